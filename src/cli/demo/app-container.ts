import type Docker from 'dockerode';
import { DEMO_LABEL } from './cleanup.js';
import type { DemoImage } from './image.js';
import { DemoRefused } from './preflight.js';

/**
 * Runs a version of the demo app the way an operator deploys: `docker rm -f NAME && docker run
 * --name NAME --network host …`. Only a container of this demo's (labelled with `prefix`) is
 * removed; another container of that name is refused, untouched.
 */
export async function deployApp(docker: Docker, name: string, image: DemoImage, port: number, prefix: string): Promise<void> {
  const existing = await docker.getContainer(name).inspect().catch((err: { statusCode?: number }) => {
    if (err.statusCode === 404) return undefined;
    throw err;
  });
  if (existing && existing.Config.Labels?.[DEMO_LABEL] !== prefix) {
    throw new DemoRefused(`container ${name} is not the demo's (no label ${DEMO_LABEL}=${prefix}); it was left alone`);
  }
  if (existing) {
    await docker.getContainer(existing.Id).remove({ force: true }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
  }
  const container = await docker.createContainer({
    name, Image: image.ref, Env: [`PORT=${port}`], Labels: { [DEMO_LABEL]: prefix },
    HostConfig: { NetworkMode: 'host' },
  });
  await container.start();
}

export { demuxLog } from '../../targets/docker-container/demux.js';
import { demuxLog } from '../../targets/docker-container/demux.js';

/**
 * Why the demo app's container `name` stopped — "exited with code 1" and its last log lines —
 * or undefined while it runs (or is being replaced).
 */
export async function appExited(docker: Docker, name: string, lines = 10): Promise<string | undefined> {
  const info = await docker.getContainer(name).inspect().catch(() => undefined);
  if (!info || !['exited', 'dead'].includes(info.State.Status)) return undefined;
  const raw = await docker.getContainer(info.Id).logs({ stdout: true, stderr: true, follow: false, tail: lines }).catch(() => undefined);
  const log = raw ? demuxLog(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw))).trimEnd() : '';
  return `exited with code ${info.State.ExitCode}${info.State.Error ? ` (${info.State.Error})` : ''}${log ? `; its last log lines:\n${log.replace(/^/gm, '    ')}` : ' and logged nothing'}`;
}
