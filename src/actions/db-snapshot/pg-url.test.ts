import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { splitPassword } from './pg-url.js';

describe('splitPassword', () => {
  it('takes the password out of the userinfo and keeps the user, host, database and parameters', () => {
    assert.deepEqual(splitPassword('postgresql://erp:s3cret@127.0.0.1:5432/himalytix?sslmode=require'), {
      url: 'postgresql://erp@127.0.0.1:5432/himalytix?sslmode=require',
      password: 's3cret',
    });
  });

  it('percent-decodes the password, which may itself contain @ and :', () => {
    assert.deepEqual(splitPassword('postgres://erp:p%40ss%3Aw%2Fo rd@db:5432/app'), { url: 'postgres://erp@db:5432/app', password: 'p@ss:w/o rd' });
    assert.deepEqual(splitPassword('postgres://erp:a@b@db/app'), { url: 'postgres://erp@db/app', password: 'a@b' });
  });

  it('takes a password= parameter out too (libpq prefers it to the userinfo one)', () => {
    assert.deepEqual(splitPassword('postgresql://erp:old@db/app?connect_timeout=5&password=n%26ew&sslmode=disable'), {
      url: 'postgresql://erp@db/app?connect_timeout=5&sslmode=disable',
      password: 'n&ew',
    });
    assert.deepEqual(splitPassword('postgresql://db/app?password=x'), { url: 'postgresql://db/app', password: 'x' });
  });

  it('leaves a URL without a password as written, user and empty password included', () => {
    for (const url of ['postgresql://erp@127.0.0.1:5432/himalytix', 'postgresql:///app?host=/run/postgresql', 'postgresql://h1:5432,h2:5433/app']) {
      assert.deepEqual(splitPassword(url), { url });
    }
    assert.deepEqual(splitPassword('postgresql://erp:@db/app'), { url: 'postgresql://erp@db/app' });
    assert.deepEqual(splitPassword('postgresql://:pw@db/app'), { url: 'postgresql://db/app', password: 'pw' });
  });
});
