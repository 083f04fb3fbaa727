import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** One regular file of a tar archive: its content in memory, or a file on disk read as it is sent. */
export interface TarEntry {
  name: string;
  mode: number;
  content: Buffer | { file: string };
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** A POSIX ustar header for a regular file (names up to 100 bytes, plus a 155-byte prefix). */
function header(name: string, mode: number, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut < 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar: name too long: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  h.write(octal(mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(0, 12), 136, 'ascii'); // mtime: fixed, so the same files give the same layer
  h.write('        ', 148, 'ascii'); // checksum placeholder
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(octal(sum, 7) + ' ', 148, 'ascii');
  return h;
}

/** An uncompressed tar stream of `entries` (regular files only; directories are implied by the paths). */
export function tarStream(entries: readonly TarEntry[]): Readable {
  async function* blocks(): AsyncGenerator<Buffer> {
    for (const entry of entries) {
      if (Buffer.isBuffer(entry.content)) {
        yield header(entry.name, entry.mode, entry.content.length);
        yield entry.content;
        yield Buffer.alloc((BLOCK - (entry.content.length % BLOCK)) % BLOCK);
        continue;
      }
      const { size } = await stat(entry.content.file);
      yield header(entry.name, entry.mode, size);
      let sent = 0;
      for await (const chunk of createReadStream(entry.content.file)) {
        const buf = chunk as Buffer;
        sent += buf.length;
        yield buf;
      }
      if (sent !== size) throw new Error(`tar: ${entry.content.file} changed while it was read`);
      yield Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
    }
    yield Buffer.alloc(BLOCK * 2);
  }
  return Readable.from(blocks(), { objectMode: false });
}
