import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { elfInterpreter, nodeRuntimeFiles, parseLibraryListing } from './image.js';

const LISTING = `\tlinux-vdso.so.1 (0x00007ffd)
\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007fd2)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fd3)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fd4)
`;

describe('the demo image\'s Node runtime files', () => {
  it('parseLibraryListing() returns every library file and the loader, not the vDSO', () => {
    assert.deepEqual(parseLibraryListing(LISTING, '/usr/bin/node'), [
      '/lib/x86_64-linux-gnu/libstdc++.so.6',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  it('parseLibraryListing() refuses a listing with a library the loader cannot find, naming it', () => {
    const listing = `${LISTING}\tlibssl.so.3 => not found\n\tlibcrypto.so.3 => not found\n`;
    assert.throws(() => parseLibraryListing(listing, '/opt/node/bin/node'), /cannot find libssl\.so\.3, libcrypto\.so\.3 for \/opt\/node\/bin\/node/);
  });

  it('elfInterpreter() names the loader of this dynamically linked Node, and none for a static busybox', async () => {
    assert.match((await elfInterpreter(process.execPath)) ?? '', /^\/.*ld-.*\.so/);
    assert.equal(await elfInterpreter('/bin/busybox'), undefined);
  });

  it('elfInterpreter() refuses a file that is not an ELF executable', async () => {
    await assert.rejects(elfInterpreter(new URL(import.meta.url).pathname), /is not an ELF executable/);
  });

  it('nodeRuntimeFiles() lists the same files through the loader when the host has no ldd', async () => {
    const withLdd = await nodeRuntimeFiles();
    assert.ok(withLdd.some((f) => /libc\.so/.test(f)), withLdd.join(', '));
    const withoutLdd = await nodeRuntimeFiles(process.execPath, { ldd: '/nonexistent/ldd' });
    assert.deepEqual([...withoutLdd].sort(), [...withLdd].sort());
  });

  it('nodeRuntimeFiles() of a static binary is nothing besides the binary', async () => {
    assert.deepEqual(await nodeRuntimeFiles('/bin/busybox'), []);
  });
});
