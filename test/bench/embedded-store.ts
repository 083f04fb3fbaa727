/**
 * Memory of the embedded store options, side by side: a `node --optimize-for-size` process that
 * imports the built daemon (dist/daemon/daemon.js), opens the store with its migrations, writes
 * and reads a little, then idles; VmRSS is sampled once a second for ~10 s (median, min, max) and
 * VmHWM read at the end. Each store option on a fresh state directory (first start) and again on
 * that directory (restart); the same process with no store is the baseline. No Docker, no network.
 *
 *   npm run -s build && node --import tsx test/bench/embedded-store.ts
 *
 * Options: SQLite (what the daemon uses), PGlite with the options an older version used (initdb in
 * a child process, 128 MiB of WebAssembly memory), the same under V8's `--liftoff-only` (no
 * optimising WebAssembly compiler), and SQLite opening a PGlite directory to convert it. It prints
 * figures and never asserts them: exit 1 only when the bench itself failed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DIST = path.join(ROOT, 'dist');
const SAMPLES = 11; // one a second: ~10 s
const dist = (file: string): string => JSON.stringify(pathToFileURL(path.join(DIST, file)).href);

type Store = 'none' | 'sqlite' | 'pglite';

/**
 * The measured process: plain JavaScript against dist/, so no TypeScript loader adds to its memory.
 * It prints `ready` once the store is open and used, and closes it on SIGTERM.
 */
const CHILD = `
import pino from 'pino';
await import(${dist('daemon/daemon.js')});
const { Store } = await import(${dist('store/store.js')});
const { Outbox } = await import(${dist('store/outbox.js')});
const kind = process.env.BENCH_STORE;
const stateDir = process.env.BENCH_STATE_DIR;
let sql;
if (kind === 'sqlite') {
  const { openStore } = await import(${dist('store/open-store.js')});
  sql = (await openStore({ stateDir, log: pino({ level: 'silent' }) })).sql;
} else if (kind === 'pglite') {
  const { pgliteSql } = await import(${dist('store/pglite.js')});
  const { migrate } = await import(${dist('store/migrations.js')});
  sql = await pgliteSql(stateDir);
  await migrate(sql);
}
if (sql) {
  const store = new Store(sql);
  const at = new Date();
  const d = await store.insertDeployment({ service: 'bench', target: 'docker-container', container_id: 'c', container_name: 'bench', from_image: 'sha256:1',
    from_ref: 'app:v1', to_image: 'sha256:2', to_ref: 'app:v2', dry_run: false, started_at: at, detected_at: at, window_ends_at: new Date(at.getTime() + 60_000) });
  await store.insertSamples(Array.from({ length: 20 }, (_, i) => ({ deployment_id: d.id, stage: 'watch', signal: 'error_rate', taken_at: new Date(at.getTime() + i),
    value: i / 100, result: 'ok', rules: { 'error rate above 5%': 'ok' }, detail: null, latency_ms: 3 })));
  await store.insertDecision({ deployment_id: d.id, decided_at: at, kind: 'pass' });
  await store.updateDeployment(d.id, { state: 'passed', decided_at: at });
  await new Outbox(sql).add([{ deployment_id: d.id, event: 'deployment_passed', channel: 'hook', dedup_key: 'bench-' + d.id, created_at: at,
    payload: { kind: 'deployment_passed', severity: 'P2', title: 't', summary: 's', at: at.toISOString() } }]);
  await store.listDeployments({ limit: 50 });
  await store.listSamples(d.id);
  await store.getKnownGood('bench');
}
process.on('SIGTERM', async () => {
  await sql?.close();
  process.exit(0);
});
setInterval(() => {}, 60_000);
process.stdout.write('ready\\n');
`;

interface Result { option: string; start: string; samplesMb: number[]; hwmMb: number | undefined; openMs: number }

async function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : undefined;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One measured process: started, waited for until its store is ready, sampled, stopped. */
async function measure(option: string, start: string, store: Store, stateDir: string, nodeFlags: string[] = []): Promise<Result> {
  const began = Date.now();
  const child = spawn(process.execPath, ['--optimize-for-size', ...nodeFlags, '--input-type=module', '-e', CHILD], {
    cwd: ROOT, env: { ...process.env, BENCH_STORE: store, BENCH_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += String(chunk); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    let ready = false;
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === 'ready') {
        ready = true;
        break;
      }
    }
    if (!ready) throw new Error(`${option} (${start}) exited before it was ready (${await exited}): ${stderr.trim()}`);
    const openMs = Date.now() - began;
    const pid = child.pid as number;
    const samplesMb: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      if (i) await sleep(1_000);
      const rss = await statusField(pid, 'VmRSS');
      if (rss !== undefined) samplesMb.push(rss);
    }
    const hwmMb = await statusField(pid, 'VmHWM');
    child.kill('SIGTERM');
    if ((await exited) !== 0) throw new Error(`${option} (${start}) did not stop cleanly: ${stderr.trim()}`);
    return { option, start, samplesMb, hwmMb, openMs };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (c: string): boolean => /^[\d.]+ (MB|s)$/.test(c);
  const line = (cells: string[]): string => cells.map((c, i) => (numeric(c) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

async function main(): Promise<void> {
  if (!existsSync(path.join(DIST, 'daemon/daemon.js'))) throw new Error('dist/ is missing: run `npm run -s build` first');
  const root = await mkdtemp(path.join(os.tmpdir(), 'rollguard-bench-embedded-'));
  const results: Result[] = [];
  try {
    results.push(await measure('no store (baseline)', '-', 'none', path.join(root, 'none')));
    const pair = async (option: string, store: Store, dir: string, flags: string[] = []): Promise<void> => {
      results.push(await measure(option, 'first start (fresh dir)', store, dir, flags));
      results.push(await measure(option, 'restart (same dir)', store, dir, flags));
    };
    await pair('SQLite (better-sqlite3)', 'sqlite', path.join(root, 'sqlite'));
    await pair('PGlite, 128 MiB', 'pglite', path.join(root, 'pglite'));
    await pair('PGlite, 128 MiB, --liftoff-only', 'pglite', path.join(root, 'pglite-liftoff'), ['--liftoff-only']);
    // The upgrade: SQLite started on a state directory an older version left with PGlite in it.
    const upgrade = path.join(root, 'upgrade');
    await cp(path.join(root, 'pglite'), upgrade, { recursive: true });
    results.push(await measure('SQLite, converting a PGlite dir', 'first start (converts)', 'sqlite', upgrade));
    results.push(await measure('SQLite, converting a PGlite dir', 'restart (converted)', 'sqlite', upgrade));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  console.log(`embedded store memory — ${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} CPU, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`);
  console.log(`node --optimize-for-size; imports dist/daemon/daemon.js, opens the store (migrations), a few writes and reads, then VmRSS once a second for ${SAMPLES - 1} s`);
  console.log();
  table(['option', 'start', 'median VmRSS', 'min', 'max', 'VmHWM', 'ready after'], results.map((r) => [
    r.option, r.start, `${median(r.samplesMb).toFixed(1)} MB`, `${Math.min(...r.samplesMb).toFixed(1)} MB`, `${Math.max(...r.samplesMb).toFixed(1)} MB`,
    r.hwmMb === undefined ? '-' : `${r.hwmMb.toFixed(1)} MB`, `${(r.openMs / 1000).toFixed(2)} s`,
  ]));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
