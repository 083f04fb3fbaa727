import assert from 'node:assert/strict';
import { lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InitError, writePolicyFile } from './index.js';

describe('rollguard init: writing the policy file', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'rg-init-write-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  it('without --force an existing file is refused and left as it was', async () => {
    const file = path.join(dir, 'kept.yaml');
    await writeFile(file, 'mine\n');
    await assert.rejects(writePolicyFile(file, 'version: 1\n', false), (err: unknown) => err instanceof InitError && /kept\.yaml exists; not overwritten/.test(err.message));
    assert.equal(await readFile(file, 'utf8'), 'mine\n');
  });

  it('--force replaces a symlink at the output path, never the file it points to, and leaves no temporary file', async () => {
    const target = path.join(dir, 'elsewhere.conf');
    await writeFile(target, 'someone else\'s file\n');
    const file = path.join(dir, 'linked.yaml');
    await symlink(target, file);
    await writePolicyFile(file, 'version: 1\n', true);
    assert.equal(await readFile(target, 'utf8'), 'someone else\'s file\n', 'not written through the link');
    assert.ok((await lstat(file)).isFile(), 'the link was replaced by the policy');
    assert.equal(await readFile(file, 'utf8'), 'version: 1\n');
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.tmp')), []);
  });

  it('--force replaces a file by renaming a complete new one over it (a new inode), keeping its permissions', async () => {
    const file = path.join(dir, 'policy.yaml');
    await writeFile(file, 'old policy, rather long '.repeat(100));
    await chmod(file, 0o640);
    const before = await stat(file);
    await writePolicyFile(file, 'version: 1\n', true);
    const now = await stat(file);
    assert.notEqual(now.ino, before.ino, 'renamed over, not truncated and rewritten in place');
    assert.equal(now.mode & 0o777, 0o640);
    assert.equal(await readFile(file, 'utf8'), 'version: 1\n');
  });

  it('--force into a directory it cannot write says so and leaves nothing behind', async () => {
    const file = path.join(dir, 'no-such-dir', 'p.yaml');
    await assert.rejects(writePolicyFile(file, 'version: 1\n', true), (err: unknown) => err instanceof InitError && /cannot write .*p\.yaml: ENOENT/.test(err.message));
  });
});
