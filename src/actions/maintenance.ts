import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
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
    await mkdir(path.dirname(path.resolve(m.path)), { recursive: true });
    await writeFile(m.path, m.content, { signal: AbortSignal.timeout(m.timeoutMs) });
    return `wrote ${m.path}`;
  }
  const [program, ...args] = m.argv as [string, ...string[]];
  const { stdout } = await promisify(execFile)(program, args, {
    timeout: m.timeoutMs,
    env: { ...process.env, ROLLGUARD_SERVICE: ctx.service, ROLLGUARD_DEPLOYMENT: String(ctx.deployment) },
    maxBuffer: 64 * 1024,
  });
  return `ran ${program}${stdout.trim() ? `: ${stdout.trim().slice(0, 200)}` : ''}`;
}
