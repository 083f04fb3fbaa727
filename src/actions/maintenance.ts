import { execFile } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Maintenance } from '../config/policy.js';

/**
 * Puts up the maintenance page (runbook: "Enable Maintenance Mode") when a rollback failed:
 * writes the configured file, or runs the configured program with its arguments — never
 * through a shell. Throws with what went wrong.
 */
export async function enableMaintenance(m: Maintenance, ctx: { service: string; deployment: number }): Promise<string> {
  if (m.kind === 'file') {
    // rollguard runs with umask 077 (its state is private); the maintenance page is for the web
    // server to read, so it and any directory created for it are made readable by all.
    const dir = path.dirname(path.resolve(m.path));
    const created = await mkdir(dir, { recursive: true });
    if (created) {
      for (let d = dir; d.length >= created.length; d = path.dirname(d)) await chmod(d, 0o755);
    }
    await writeFile(m.path, m.content, { signal: AbortSignal.timeout(m.timeoutMs) });
    await chmod(m.path, 0o644);
    return `wrote ${m.path}`;
  }
  const [program, ...args] = m.argv as [string, ...string[]];
  // The program inherits rollguard's umask 077; what it writes (a page for the web server) must
  // be readable as it would be from a shell, so it runs under the usual 022.
  const previous = process.umask(0o022);
  const child = promisify(execFile)(program, args, {
    timeout: m.timeoutMs,
    env: { ...process.env, ROLLGUARD_SERVICE: ctx.service, ROLLGUARD_DEPLOYMENT: String(ctx.deployment) },
    maxBuffer: 64 * 1024,
  });
  process.umask(previous);
  const { stdout } = await child;
  return `ran ${program}${stdout.trim() ? `: ${stdout.trim().slice(0, 200)}` : ''}`;
}
