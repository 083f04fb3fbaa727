import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makePrivate } from './private-files.js';

const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;

describe('makePrivate()', () => {
  let root: string;
  let dir: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'rg-private-'));
    dir = path.join(root, 'state');
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates a missing directory with mode 0700', async () => {
    await makePrivate(dir);
    assert.equal(await mode(dir), 0o700);
  });

  it('takes group and other permissions from every directory and file, however deep', async () => {
    await mkdir(path.join(dir, 'pglite/base/5'), { recursive: true });
    const files = ['rollguard.pid', 'pglite/PG_VERSION', 'pglite/base/5/16384'];
    for (const f of files) await writeFile(path.join(dir, f), 'x');
    for (const d of ['', 'pglite', 'pglite/base', 'pglite/base/5']) await chmod(path.join(dir, d), 0o2777);
    for (const f of files) await chmod(path.join(dir, f), 0o666);
    await makePrivate(dir);
    for (const d of ['', 'pglite', 'pglite/base', 'pglite/base/5']) assert.equal(await mode(path.join(dir, d)), 0o700, `directory ${d || '.'}`);
    for (const f of files) assert.equal(await mode(path.join(dir, f)), 0o600, f);
  });

  it("keeps the owner's bits: an executable stays executable, nothing is widened", async () => {
    await mkdir(dir);
    await writeFile(path.join(dir, 'hook'), '#!/bin/sh\n');
    await chmod(path.join(dir, 'hook'), 0o755);
    await writeFile(path.join(dir, 'read-only'), 'x');
    await chmod(path.join(dir, 'read-only'), 0o444);
    await makePrivate(dir);
    assert.equal(await mode(path.join(dir, 'hook')), 0o700);
    assert.equal(await mode(path.join(dir, 'read-only')), 0o400);
  });

  it('leaves what a symbolic link points at alone', async () => {
    const outside = path.join(root, 'outside.txt');
    await writeFile(outside, 'x');
    await chmod(outside, 0o644);
    await mkdir(dir);
    await symlink(outside, path.join(dir, 'link'));
    await makePrivate(dir);
    assert.equal(await mode(outside), 0o644);
    assert.ok((await lstat(path.join(dir, 'link'))).isSymbolicLink());
  });
});
