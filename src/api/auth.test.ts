import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { apiToken, bearerMatches, TokenConfigError } from './auth.js';

describe('API token', () => {
  it('comes from ROLLGUARD_API_TOKEN or, trimmed, from ROLLGUARD_API_TOKEN_FILE', () => {
    assert.equal(apiToken({}), undefined);
    assert.equal(apiToken({ ROLLGUARD_API_TOKEN: 'abc' }), 'abc');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rg-token-')), 'token');
    writeFileSync(file, 'from-file\n');
    assert.equal(apiToken({ ROLLGUARD_API_TOKEN_FILE: file }), 'from-file');
  });

  it('refuses both settings at once, an unreadable file and an empty one', () => {
    assert.throws(() => apiToken({ ROLLGUARD_API_TOKEN: 'a', ROLLGUARD_API_TOKEN_FILE: '/x' }), TokenConfigError);
    assert.throws(() => apiToken({ ROLLGUARD_API_TOKEN_FILE: '/nonexistent/rollguard-token' }), /cannot read ROLLGUARD_API_TOKEN_FILE .*ENOENT/);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rg-token-')), 'empty');
    writeFileSync(file, '\n');
    assert.throws(() => apiToken({ ROLLGUARD_API_TOKEN_FILE: file }), /is empty/);
  });

  it('a bearer header matches only the exact token', () => {
    assert.equal(bearerMatches('Bearer s3cret', 's3cret'), true);
    assert.equal(bearerMatches('bearer s3cret', 's3cret'), true);
    for (const header of [undefined, '', 's3cret', 'Bearer s3cre', 'Bearer s3crett', 'Basic s3cret', 'Bearer  ']) {
      assert.equal(bearerMatches(header, 's3cret'), false, String(header));
    }
  });
});
