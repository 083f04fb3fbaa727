import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { claimStateDir, lockFile, parseRecord, runningDaemon, StateDirBusyError } from './state-dir.js';

describe('parseRecord()', () => {
  const cases: [string, string, ReturnType<typeof parseRecord>][] = [
    ['a published record', '{"pid":42,"api":"http://127.0.0.1:9817"}', { pid: 42, api: 'http://127.0.0.1:9817' }],
    ['a record before the API listens', '{"pid":42,"api":""}', { pid: 42, api: '' }],
    ['an empty file (being rewritten)', '', undefined],
    ['a half-written record', '{"pid":42,"api":"http://127.0.0.1:98', undefined],
    ['no pid', '{"api":"http://127.0.0.1:9817"}', undefined],
    ['a pid that is no process', '{"pid":0,"api":""}', undefined],
    ['a pid as text', '{"pid":"42","api":""}', undefined],
    ['not an object', 'null', undefined],
  ];
  for (const [what, text, expected] of cases) {
    it(`reads ${what} as ${expected ? 'a record' : 'no record'}`, () => assert.deepEqual(parseRecord(text), expected));
  }
});

describe('claimStateDir() and runningDaemon()', () => {
  let dir: string;
  let sleeper: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'rg-state-unit-'));
  });

  afterEach(async () => {
    sleeper?.kill('SIGKILL');
    sleeper = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('records the pid, then the API once published, and removes the lock file on release', async () => {
    const claim = await claimStateDir(dir);
    assert.deepEqual(await runningDaemon(dir), { pid: process.pid, api: '' });
    await claim.publish('http://127.0.0.1:9817');
    assert.deepEqual(await runningDaemon(dir), { pid: process.pid, api: 'http://127.0.0.1:9817' });
    assert.equal((await stat(lockFile(dir))).mode & 0o777, 0o600);
    await claim.release();
    assert.equal(existsSync(lockFile(dir)), false);
    assert.equal(await runningDaemon(dir), undefined);
  });

  it('refuses a second claim while the first holds the lock, naming the directory and the holder, and leaves its record alone', async () => {
    const first = await claimStateDir(dir);
    await first.publish('http://127.0.0.1:9817');
    const before = await readFile(lockFile(dir), 'utf8');
    await assert.rejects(claimStateDir(dir), (err: unknown) => {
      assert.ok(err instanceof StateDirBusyError);
      assert.equal(err.message, `another rollguard (pid ${process.pid}) is running with state directory ${dir}: it holds the lock on ${lockFile(dir)}, API http://127.0.0.1:9817`);
      return true;
    });
    assert.equal(await readFile(lockFile(dir), 'utf8'), before);
    await first.release();
    const again = await claimStateDir(dir);
    await again.release();
  });

  it('lets exactly one of two claims made together win', async () => {
    const results = await Promise.allSettled([claimStateDir(dir), claimStateDir(dir)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.ok(lost[0]?.reason instanceof StateDirBusyError, String(lost[0]?.reason));
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof claimStateDir>>>).value.release();
  });

  it('a lock file naming a live process that holds no lock is no running daemon, and is claimed', async () => {
    sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    await writeFile(lockFile(dir), JSON.stringify({ pid: sleeper.pid, api: 'http://127.0.0.1:1' }));
    assert.equal(await runningDaemon(dir), undefined);
    const claim = await claimStateDir(dir);
    assert.deepEqual(await runningDaemon(dir), { pid: process.pid, api: '' });
    await claim.release();
  });

  it('a record caught half-written is read again until whole', async () => {
    const claim = await claimStateDir(dir);
    await writeFile(lockFile(dir), '{"pid":');
    const later = new Promise((r) => setTimeout(r, 60)).then(() => writeFile(lockFile(dir), JSON.stringify({ pid: process.pid, api: 'http://127.0.0.1:9817' })));
    assert.deepEqual(await runningDaemon(dir), { pid: process.pid, api: 'http://127.0.0.1:9817' });
    await later;
    await claim.release();
  });

  it('a lock held without a readable record is still a running daemon, its pid unknown', async () => {
    const claim = await claimStateDir(dir);
    await writeFile(lockFile(dir), 'not rollguard');
    assert.deepEqual(await runningDaemon(dir), { api: '' });
    await assert.rejects(claimStateDir(dir), /another rollguard \(pid not recorded\) is running with state directory/);
    await claim.release();
  });

  it('a claim waits out the instant a status check holds its shared lock', async () => {
    const checks = Array.from({ length: 20 }, () => runningDaemon(dir));
    const claim = await claimStateDir(dir);
    await Promise.all(checks);
    await claim.release();
  });

  it('makes the directory and what an older version left in it private', async () => {
    await chmod(dir, 0o777);
    await writeFile(path.join(dir, 'instance.json'), '{}', { mode: 0o666 });
    await chmod(path.join(dir, 'instance.json'), 0o666);
    const claim = await claimStateDir(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(path.join(dir, 'instance.json'))).mode & 0o777, 0o600);
    await claim.release();
  });
});
