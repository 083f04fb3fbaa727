import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { enableMaintenance } from './maintenance.js';

describe('enableMaintenance (file)', () => {
  it('under rollguard umask 077 the page and the directories created for it are readable by the web server', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rg-maintenance-'));
    const previous = process.umask(0o077);
    try {
      const file = path.join(root, 'www', 'maint', 'index.html');
      const out = await enableMaintenance({ kind: 'file', path: file, content: '<h1>back soon</h1>', timeoutMs: 2_000 }, { service: 'web', deployment: 1 });
      assert.equal(out, `wrote ${file}`);
      assert.equal(await readFile(file, 'utf8'), '<h1>back soon</h1>');
      assert.equal((await stat(file)).mode & 0o777, 0o644);
      assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o755);
      assert.equal((await stat(path.join(root, 'www'))).mode & 0o777, 0o755);
      assert.equal((await stat(root)).mode & 0o777, 0o700, 'a directory that already existed is left as it was');
    } finally {
      process.umask(previous);
      await rm(root, { recursive: true, force: true });
    }
  });

  it('a maintenance command runs under umask 022 though rollguard runs under 077, and rollguard keeps its own', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rg-maintenance-'));
    const previous = process.umask(0o077);
    try {
      const file = path.join(root, 'page.html');
      const out = await enableMaintenance({ kind: 'command', argv: ['/bin/sh', '-c', `echo down > ${file}`], timeoutMs: 5_000 }, { service: 'web', deployment: 1 });
      assert.match(out, /^ran \/bin\/sh/);
      assert.equal((await stat(file)).mode & 0o777, 0o644);
      assert.equal(process.umask(), 0o077, "rollguard's own umask is unchanged");
    } finally {
      process.umask(previous);
      await rm(root, { recursive: true, force: true });
    }
  });
});
