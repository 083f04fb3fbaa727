/**
 * Runs the integration test files three at a time, within the limits of what they share:
 * - the file that stops a shared service (PostgreSQL) runs alone, first;
 * - files of one port group (the fixture ports 18080-18082) never run at the same time;
 * - init and the README tutorial (they see every container and Swarm service on the engine; the
 *   tutorial listens on the default port) and zz-secrets-in-logs (it reads the logs every other
 *   file kept, all under one ROLLGUARD_TEST_RUN) run last, alone;
 * - the files that load the machine (an image build, a browser) never run beside those that assert
 *   timings (lease takeover, batching, the stop grace).
 * The fixture images are built once before, so every file's build is a cache hit and gets the same
 * image IDs. Each file's spec output is printed whole when it ends (never interleaved), then one
 * summary. Exits 1 when any file failed.
 *
 *   node --import tsx scripts/integration.ts [--concurrency N] [files…]
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { buildFixtures, ROOT } from '../test/integration/harness.js';

const DIR = path.join(ROOT, 'test/integration');
/** Restarts the database every other file uses (outages restarts an engine of its own, not the main one). */
const ALONE_FIRST = new Set(['store-outage.test.ts']);
/** Reads what all the others left. */
const ALONE_LAST = new Set(['init.test.ts', 'tutorial.test.ts', 'zz-secrets-in-logs.test.ts']);
/**
 * One file of each group at a time: shared loopback ports (the fixture ports 18080-18082; the
 * default listen address 127.0.0.1:9817, which outages asserts and demo takes when free), or load
 * (an image build, a browser, a second engine) beside timing assertions (lease takeover,
 * batching, the stop grace, a revert not slowed by hanging receivers).
 */
const GROUPS: Record<string, string[]> = {
  'services.test.ts': ['fixture-ports'], 'watch-and-revert.test.ts': ['fixture-ports'], 'lifecycle.test.ts': ['fixture-ports'], 'revert-failures.test.ts': ['fixture-ports'],
  'packaging.test.ts': ['timing'], 'status-page.test.ts': ['timing'], 'ha.test.ts': ['timing'], 'batching.test.ts': ['timing'], 'crash.test.ts': ['timing'],
  'signal-faults.test.ts': ['timing'], 'outages.test.ts': ['timing', 'port-9817'], 'demo.test.ts': ['port-9817'],
};
/** The longest files first, so the lanes end together (seconds, from a run of the whole suite). */
const WEIGHT: Record<string, number> = {
  'services.test.ts': 261, 'policy-rules.test.ts': 259, 'outages.test.ts': 222, 'swarm.test.ts': 183, 'crash.test.ts': 150, 'notifications.test.ts': 138,
  'lifecycle.test.ts': 126, 'packaging.test.ts': 126, 'flapping.test.ts': 112, 'ha.test.ts': 85, 'watch-and-revert.test.ts': 75,
  'revert-failures.test.ts': 70, 'holds.test.ts': 66, 'batching.test.ts': 52, 'rollback-cli.test.ts': 39, 'resume.test.ts': 34,
  'status-page.test.ts': 31, 'state-dir.test.ts': 28, 'demo.test.ts': 25, 'signal-faults.test.ts': 23,
  'runbook-container.test.ts': 45, 'runbook-git.test.ts': 44, 'prometheus-auth.test.ts': 40, 'alertmanager.test.ts': 55,
};

interface Result { file: string; code: number; ms: number; tests: number; pass: number; fail: number; output: string }

/** Every file's daemons keep their logs under this run's one directory (harness.ts KEPT_LOGS). */
const RUN_ID = process.env.ROLLGUARD_TEST_RUN ?? `run-${process.pid}-${Date.now()}`;

function runFile(file: string): Promise<Result> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', path.join(DIR, file)], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ROLLGUARD_TEST_RUN: RUN_ID },
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => { output += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { output += b.toString(); });
    child.on('close', (code) => {
      const count = (what: string): number => Number(new RegExp(`^ℹ ${what} (\\d+)$`, 'm').exec(output)?.[1] ?? 0);
      resolve({ file, code: code ?? 1, ms: Date.now() - started, tests: count('tests'), pass: count('pass'), fail: count('fail'), output });
    });
  });
}

function report(r: Result): void {
  process.stdout.write(`\n━━ ${r.file} — ${r.code === 0 ? 'ok' : 'FAILED'} in ${(r.ms / 1000).toFixed(0)} s ━━\n${r.output}`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--concurrency');
  const concurrency = at >= 0 ? Number(args.splice(at, 2)[1]) : 3;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency: expected a positive integer');
  const files = (args.length ? args.map((f) => path.basename(f)) : readdirSync(DIR).filter((f) => f.endsWith('.test.ts'))).sort();
  const t0 = Date.now();
  process.stdout.write(`building the fixture images once (${files.length} files, ${concurrency} at a time)\n`);
  await buildFixtures();
  const results: Result[] = [];
  const alone = async (set: Set<string>): Promise<void> => {
    for (const f of files.filter((x) => set.has(x))) {
      const r = await runFile(f);
      report(r);
      results.push(r);
    }
  };
  await alone(ALONE_FIRST);
  const queue = files.filter((f) => !ALONE_FIRST.has(f) && !ALONE_LAST.has(f)).sort((a, b) => (WEIGHT[b] ?? 20) - (WEIGHT[a] ?? 20));
  const busy = new Set<string>();
  await new Promise<void>((done) => {
    let running = 0;
    const next = (): void => {
      if (!queue.length && !running) return done();
      while (running < concurrency) {
        const i = queue.findIndex((f) => !(GROUPS[f] ?? []).some((g) => busy.has(g)));
        if (i < 0) return;
        const [file] = queue.splice(i, 1) as [string];
        const groups = GROUPS[file] ?? [];
        for (const g of groups) busy.add(g);
        running++;
        void runFile(file).then((r) => {
          report(r);
          results.push(r);
          for (const g of groups) busy.delete(g);
          running--;
          next();
        });
      }
    };
    next();
  });
  await alone(ALONE_LAST);
  const sum = (k: 'tests' | 'pass' | 'fail'): number => results.reduce((n, r) => n + r[k], 0);
  const failed = results.filter((r) => r.code !== 0);
  process.stdout.write(`\n━━ integration summary ━━\n`);
  for (const r of [...results].sort((a, b) => b.ms - a.ms)) process.stdout.write(`  ${(r.ms / 1000).toFixed(0).padStart(5)} s  ${r.code === 0 ? 'ok    ' : 'FAILED'}  ${r.file} (${r.pass}/${r.tests})\n`);
  process.stdout.write(`ℹ files ${results.length}\nℹ tests ${sum('tests')}\nℹ pass ${sum('pass')}\nℹ fail ${sum('fail')}\nℹ files_failed ${failed.length}\nℹ duration_ms ${Date.now() - t0}\n`);
  process.exitCode = failed.length ? 1 : 0;
}

await main();
