import { execFile } from 'node:child_process';
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
 * The files the running Node needs in an empty image: the binary itself and the shared libraries
 * `ldd` lists for it, each at the path the loader looks for. A statically linked Node (or a host
 * without `ldd`) is the binary alone.
 */
export async function nodeRuntimeFiles(nodePath = process.execPath): Promise<string[]> {
  let listing = '';
  try {
    listing = (await exec('ldd', [nodePath])).stdout;
  } catch {
    return [];
  }
  // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file.
  return [...listing.matchAll(/^\s*(?:\S+\s+=>\s+)?(\/\S+)\s+\(0x[0-9a-f]+\)/gm)].map((m) => m[1] as string);
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
