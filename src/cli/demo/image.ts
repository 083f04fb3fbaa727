import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { DEMO_SERVER_JS } from './app-server.js';
import { tarStream, type TarEntry } from './tar.js';

const exec = promisify(execFile);

/** One version of the demo app, built on this host. */
export interface DemoImage {
  ref: string;
  id: string;
}

/**
 * The program interpreter (dynamic loader) an ELF executable names in its PT_INTERP header, or
 * undefined for a statically linked one. Throws when the file is not an ELF executable.
 */
export async function elfInterpreter(file: string): Promise<string | undefined> {
  const fh = await open(file, 'r');
  try {
    const read = async (offset: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new Error(`${file}: truncated ELF file`);
      return buf;
    };
    const ident = await read(0, 64);
    if (ident.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF executable`);
    const is64 = ident[4] === 2;
    const le = ident[5] === 1;
    const u16 = (b: Buffer, o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const word = (b: Buffer, o: number): number => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(b, o));
    const phoff = word(ident, is64 ? 0x20 : 0x1c);
    const phentsize = u16(ident, is64 ? 0x36 : 0x2a);
    const phnum = u16(ident, is64 ? 0x38 : 0x2c);
    const PT_INTERP = 3;
    for (let i = 0; i < phnum; i++) {
      const ph = await read(phoff + i * phentsize, phentsize);
      if (u32(ph, 0) !== PT_INTERP) continue;
      const offset = word(ph, is64 ? 0x08 : 0x04);
      const size = word(ph, is64 ? 0x20 : 0x10);
      return (await read(offset, size)).toString('latin1').replace(/\0.*$/s, '');
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

/**
 * The files an `ldd` (or `<loader> --list`) listing names, each at the path the loader looks for;
 * throws naming the libraries the loader could not find ("libfoo.so.1 => not found").
 */
export function parseLibraryListing(listing: string, binary: string): string[] {
  const missing = [...listing.matchAll(/^\s*(\S+)\s+=>\s+not found/gm)].map((m) => m[1] as string);
  if (missing.length) throw new Error(`the loader cannot find ${missing.join(', ')} for ${binary}: the demo image could not run it (check with: ldd ${binary})`);
  // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file.
  return [...listing.matchAll(/^\s*(?:\S+\s+=>\s+)?(\/\S+)\s+\(0x[0-9a-f]+\)/gm)].map((m) => m[1] as string);
}

/**
 * The files the running Node needs in an empty image: the binary itself and the shared libraries
 * its loader lists for it, each at the path the loader looks for. A statically linked Node (no
 * ELF interpreter) is the binary alone. `ldd` lists them; without it, the loader itself does
 * (`<interpreter> --list`, as ldd does). Throws when neither can, or a library is missing.
 */
export async function nodeRuntimeFiles(nodePath = process.execPath, opts: { ldd?: string } = {}): Promise<string[]> {
  const interp = await elfInterpreter(nodePath);
  if (!interp) return [];
  let listing: string;
  try {
    listing = (await exec(opts.ldd ?? 'ldd', [nodePath])).stdout;
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') throw new Error(`ldd ${nodePath} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
    try {
      listing = (await exec(interp, ['--list', nodePath])).stdout;
    } catch (err2) {
      throw new Error(`cannot list the shared libraries of ${nodePath}: no ldd on this host, and ${interp} --list failed (${(err2 as { stderr?: string }).stderr?.trim() || (err2 as Error).message}); install ldd (Debian: libc-bin) or use a statically linked Node`);
    }
  }
  const files = parseLibraryListing(listing, nodePath);
  return files.includes(interp) ? files : [...files, interp];
}

async function build(docker: Docker, context: TarEntry[], tag: string, signal: AbortSignal): Promise<string> {
  const stream = await docker.buildImage(tarStream(context) as unknown as NodeJS.ReadableStream, { t: tag, rm: true, forcerm: true, abortSignal: signal } as Docker.ImageBuildOptions);
  const output = await new Promise<{ error?: string; aux?: { ID?: string } }[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string; aux?: { ID?: string } }[]) => (err ? reject(err) : resolve(out)));
  });
  const failed = output.find((o) => o.error);
  if (failed) throw new Error(`building the demo image ${tag} failed: ${failed.error}`);
  return (await docker.getImage(tag).inspect()).Id;
}

/**
 * Builds the demo app's two versions on the engine, with no registry: v1 (good) is FROM scratch
 * with the host's own Node binary, its libraries and the demo server; v2 (bad: /ready answers 503,
 * / answers 500) is v1 with other settings. Both carry `label` (`key=value`) so the demo can remove them.
 */
export async function buildDemoImages(docker: Docker, opts: { repo: string; label: string; signal: AbortSignal }): Promise<{ good: DemoImage; bad: DemoImage }> {
  const libs = await nodeRuntimeFiles();
  const libDirs = [...new Set(libs.map((l) => path.dirname(l)))];
  const dockerfile = [
    'FROM scratch',
    'COPY rootfs/ /',
    ...(libDirs.length ? [`ENV LD_LIBRARY_PATH=${libDirs.join(':')}`] : []),
    'ENV DEMO_VERSION=v1 DEMO_READY=1 PORT=9818',
    `LABEL org.opencontainers.image.version=v1 ${opts.label}`,
    'CMD ["/bin/node", "/app/server.js"]',
    '',
  ].join('\n');
  const context: TarEntry[] = [
    { name: 'Dockerfile', mode: 0o644, content: Buffer.from(dockerfile) },
    { name: 'rootfs/app/server.js', mode: 0o644, content: Buffer.from(DEMO_SERVER_JS) },
    { name: 'rootfs/bin/node', mode: 0o755, content: { file: process.execPath } },
    ...libs.map((lib) => ({ name: `rootfs${lib}`, mode: 0o755, content: { file: lib } })),
  ];
  const goodRef = `${opts.repo}:v1`;
  const good = { ref: goodRef, id: await build(docker, context, goodRef, opts.signal) };
  const badRef = `${opts.repo}:v2`;
  const badDockerfile = [`FROM ${good.id}`, 'ENV DEMO_VERSION=v2 DEMO_READY=0', 'LABEL org.opencontainers.image.version=v2', ''].join('\n');
  const bad = { ref: badRef, id: await build(docker, [{ name: 'Dockerfile', mode: 0o644, content: Buffer.from(badDockerfile) }], badRef, opts.signal) };
  return { good, bad };
}
