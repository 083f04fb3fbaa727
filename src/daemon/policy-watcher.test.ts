import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { watchPolicyFile, type PolicyWatch } from './policy-watcher.js';

const DEBOUNCE_MS = 50;
/** Long enough for a debounced call that should not come to have come (negative checks only). */
const QUIET_MS = DEBOUNCE_MS * 6;
const log = pino({ level: 'silent' });

async function until(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const quiet = (): Promise<void> => new Promise((r) => setTimeout(r, QUIET_MS));

describe('watchPolicyFile()', () => {
  let root: string;
  let dir: string;
  let file: string;
  let calls: number;
  let watcher: PolicyWatch | undefined;

  const start = (target = file): void => {
    watcher = watchPolicyFile(target, { log, debounceMs: DEBOUNCE_MS, retryMs: 50, onChange: () => calls++ });
  };

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'rg-watch-'));
    dir = path.join(root, 'etc');
    await mkdir(dir);
    file = path.join(dir, 'policy.yaml');
    await writeFile(file, 'version: 1\n');
    calls = 0;
  });

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it('reports an in-place write once, after the burst of events it causes', async () => {
    start();
    await writeFile(file, 'version: 1\n# a\n');
    await writeFile(file, 'version: 1\n# b\n');
    await until('the change', () => calls >= 1);
    await quiet();
    assert.equal(calls, 1);
  });

  it('keeps reporting saves that replace the file by rename, as editors do', async () => {
    start();
    for (const n of [1, 2, 3]) {
      await writeFile(`${file}.tmp`, `version: 1\n# save ${n}\n`);
      await rename(`${file}.tmp`, file);
      await until(`save ${n}`, () => calls === n);
    }
  });

  it('reports a file that was deleted and created again', async () => {
    start();
    await rm(file);
    await until('the deletion', () => calls === 1);
    await writeFile(file, 'version: 1\n');
    await until('the new file', () => calls === 2);
  });

  it('ignores other files in the same directory', async () => {
    start();
    await writeFile(path.join(dir, 'rollguard.log'), 'noise\n');
    await writeFile(path.join(dir, 'policy.yaml.bak'), 'noise\n');
    await quiet();
    assert.equal(calls, 0);
  });

  it('watches again when the directory is replaced, and reports the new file', async () => {
    start();
    await rename(dir, path.join(root, 'etc.old'));
    await mkdir(dir);
    await writeFile(file, 'version: 1\n# new directory\n');
    await until('the replaced directory', () => calls >= 1);
    const seen = calls;
    await writeFile(file, 'version: 1\n# edited in the new directory\n');
    await until('an edit in the new directory', () => calls > seen);
  });

  it('follows a symlinked policy into the directory it points at', async () => {
    const link = path.join(root, 'policy.yaml');
    await symlink(file, link);
    start(link);
    await writeFile(`${file}.tmp`, 'version: 1\n# via the target\n');
    await rename(`${file}.tmp`, file);
    await until('the change to the target', () => calls === 1);
  });

  it('reports nothing after close()', async () => {
    start();
    watcher?.close();
    await writeFile(file, 'version: 1\n# after close\n');
    await quiet();
    assert.equal(calls, 0);
  });
});
