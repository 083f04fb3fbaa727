#!/usr/bin/env -S node --optimize-for-size
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/errors.js';
import { parseDuration } from '../config/duration.js';
import { loadPolicy } from '../config/load-policy.js';
import { createLogger } from '../daemon/logger.js';
import { runRollguard } from '../daemon/runtime.js';
import { StateDirBusyError } from '../daemon/state-dir.js';
import { DockerUnreachableError, reachDocker } from './docker-reachable.js';
import { addExamples } from './examples.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { packageVersion } from '../model/version.js';
// Each command's own modules are loaded when it runs, so `rollguard run` (a long-lived daemon)
// does not carry the code of the others (idle memory).

// The state directory holds every guarded container's spec, environment secrets included:
// whatever rollguard creates is private to its user, whatever umask it was started with.
process.umask(0o077);

const program = new Command();
const stateDirOption = ['--state-dir <dir>', 'state directory (embedded database, pid file; default $ROLLGUARD_STATE_DIR, then systemd\'s $STATE_DIRECTORY, then ./var)', process.env.ROLLGUARD_STATE_DIR || process.env.STATE_DIRECTORY?.split(':')[0] || './var'] as const;

program
  .name('rollguard')
  .description('Watches deployments on a Docker host and on Swarm, and reverts a bad one to the last known-good version.')
  .version(packageVersion(), '-V, --version', 'print rollguard\'s version')
  .showHelpAfterError()
  // Usage errors exit 2 (sysexits' EX_USAGE is 64, but 2 is what every shell tool does); help and --version exit 0.
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  });

program
  .command('run')
  .description('run the daemon')
  .requiredOption('--policy <file>', 'policy YAML')
  .option('--listen <addr>', 'HTTP address for /healthz and /metrics', process.env.ROLLGUARD_LISTEN ?? '127.0.0.1:9817')
  .option('--dry-run', 'decide and record, but never touch containers', false)
  .option(...stateDirOption)
  .option('--instance-id <id>', 'this instance\'s name when several share one PostgreSQL (default: host name, pid and a random part)', process.env.ROLLGUARD_INSTANCE_ID || undefined)
  .action(async (opts: { policy: string; listen: string; dryRun: boolean; stateDir: string; instanceId?: string }) => {
    const log = createLogger();
    const ttl = process.env.ROLLGUARD_LEASE_TTL;
    const leaseTtlMs = ttl ? parseDuration(ttl) : undefined;
    if (ttl && (leaseTtlMs === undefined || leaseTtlMs < 300)) {
      process.stderr.write(`ROLLGUARD_LEASE_TTL: expected a duration of at least 300ms such as 6s, got "${ttl}"\n`);
      process.exit(EXIT.config);
    }
    // A reload can arrive during start-up (systemd's reload right after start); SIGHUP's default
    // action would end the process, so remember it and re-read the policy once rollguard runs.
    let rollguard: Awaited<ReturnType<typeof runRollguard>> | undefined;
    let reloadRequested = false;
    process.on('SIGHUP', () => {
      if (rollguard) void rollguard.reload('SIGHUP');
      else reloadRequested = true;
    });
    // So can a stop: SIGTERM's default action would end the process half-way through opening the
    // database and claiming the state directory, so it is remembered and carried out once started.
    let stopRequested: string | undefined;
    let shutdown = (signal: string): void => {
      if (stopRequested) return;
      stopRequested = signal;
      log.info({ signal }, 'shutdown requested during start-up; stopping once started');
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    try {
      // A bad policy is told first (78: not worth restarting), before an engine that does not answer (69).
      await loadPolicy(opts.policy);
      rollguard = await runRollguard({ policyFile: opts.policy, listen: opts.listen, dryRun: opts.dryRun, stateDir: opts.stateDir, databaseUrl: process.env.DATABASE_URL || undefined, instanceId: opts.instanceId, leaseTtlMs, log, docker: await reachDocker() });
    } catch (err) {
      if (err instanceof ConfigError || err instanceof StateDirBusyError || err instanceof DockerUnreachableError) {
        process.stderr.write(`${err.message}\n`);
        log.flush();
        process.exit(exitCodeFor(err));
      }
      log.fatal({ err }, 'rollguard could not start');
      log.flush();
      process.exit(1);
    }
    const running = rollguard;
    let exiting = false;
    shutdown = (signal: string): void => {
      if (exiting) return;
      exiting = true;
      log.info({ signal }, 'shutdown requested');
      running.stop().then(
        () => { log.flush(); process.exit(0); },
        (err) => { log.error({ err }, 'unclean shutdown'); log.flush(); process.exit(1); },
      );
    };
    if (stopRequested) shutdown(stopRequested);
    else if (reloadRequested) void running.reload('SIGHUP');
  });

const policy = program.command('policy').description('work with policy files');
policy
  .command('check <file>')
  .description('validate a policy file; prints every problem as file:line: key: message')
  .option('--live', 'then query each PromQL signal and request each HTTP check once; exit 1 when any fails', false)
  .option('--image <ref>', 'with --live: the image reference for {{image}} and {{version}} (default: placeholders)')
  .option('--container <name>', 'with --live: the container name for {{container}} (default: the match name or a placeholder)')
  .option('--json', 'print the result as JSON: {file, ok, services, problems, live}', false)
  .action(async (file: string, opts: { live: boolean; image?: string; container?: string; json: boolean }) => {
    try {
      const p = await loadPolicy(file);
      const services = Object.values(p.services);
      if (!opts.json) process.stdout.write(`${file}: ok — ${services.length} service(s): ${services.map((s) => `${s.name} (${s.rules.length} rules)`).join(', ')}\n`);
      let live: unknown;
      if (opts.live) {
        const { formatLiveCheck, liveCheck, liveCheckPassed } = await import('./live-check.js');
        const report = await liveCheck(p, { image: opts.image, container: opts.container });
        live = report.services.map((s) => ({ service: s.name, results: s.results }));
        if (!opts.json) process.stdout.write(`${formatLiveCheck(report, p.prometheus?.url)}\n`);
        if (!liveCheckPassed(report)) process.exitCode = 1;
      }
      if (opts.json) {
        const summary = { file, ok: process.exitCode !== 1, services: services.map((s) => ({ name: s.name, rules: s.rules.length })), problems: [], live };
        process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      if (opts.json) process.stdout.write(`${JSON.stringify({ file, ok: false, services: [], problems: err.problems }, null, 2)}\n`);
      else process.stderr.write(`${err.message}\n`);
      process.exitCode = 1;
    }
  });

policy
  .command('schema')
  .description('print the JSON Schema of policy files, for editors (config/rollguard.schema.json holds a copy)')
  .action(async () => {
    process.stdout.write((await import('../config/json-schema.js')).policyJsonSchemaText());
  });

program
  .command('init')
  .description('write a starter policy for the containers, Compose and Swarm services running now (readiness checks guessed, the runbook\'s thresholds, commented)')
  .option('--output <file>', 'where to write it; an existing file is not overwritten without --force', './rollguard.yaml')
  .option('--force', 'overwrite the output file', false)
  .option('--stdout', 'print the policy instead of writing a file (the summary goes to stderr)', false)
  .action(async (opts: { output: string; force: boolean; stdout: boolean }) => {
    try {
      const { policy: text, summary } = await (await import('./init/index.js')).runInit(opts);
      if (text !== undefined) process.stdout.write(text);
      (text !== undefined ? process.stderr : process.stdout).write(`${summary}\n`);
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = exitCodeFor(err);
    }
  });

program
  .command('status')
  .description('what the running daemon is watching')
  .option('--json', 'print JSON', false)
  .option(...stateDirOption)
  .action(async (opts: { json: boolean; stateDir: string }) => {
    process.exitCode = await (await import('./views.js')).printStatus(opts);
  });

const notify = program.command('notify').description('notification channels');
notify
  .command('test <channel>')
  .description('send a test message to a channel of the policy and report the result')
  .requiredOption('--policy <file>', 'policy YAML')
  .option('--json', 'print {channel, delivered, result} as JSON', false)
  .action(async (channel: string, opts: { policy: string; json: boolean }) => {
    try {
      const p = await loadPolicy(opts.policy);
      const result = await (await import('./notify-test.js')).sendTestMessage(p, channel);
      process.stdout.write(opts.json ? `${JSON.stringify({ channel, delivered: true, result })}\n` : `${result}\n`);
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = exitCodeFor(err);
    }
  });

const report = async (work: () => Promise<string | object>): Promise<void> => {
  try {
    const out = await work();
    process.stdout.write(typeof out === 'string' ? `${out}\n` : `${JSON.stringify(out, null, 2)}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
};

program
  .command('hold <service>')
  .description('pause automatic reverts of the service\'s current deployment (fix forward); the revert proceeds at the deadline if the rule still breaches')
  .requiredOption('--for <duration>', 'how long, e.g. 10m')
  .requiredOption('--reason <text>', 'why; recorded and shown in status and alerts')
  .option('--api <url>', 'the daemon\'s API (default: from the state directory)')
  .option('--json', 'print the hold the daemon recorded as JSON', false)
  .option(...stateDirOption)
  .action((service: string, opts: { for: string; reason: string; api?: string; stateDir: string; json: boolean }) => report(async () => (await import('./holds.js')).placeHold(service, opts)));

program
  .command('release <service>')
  .description('end a hold or a migration freeze; a rule still breaching reverts at the next sample')
  .option('--api <url>', 'the daemon\'s API (default: from the state directory)')
  .option('--json', 'print the released hold as JSON', false)
  .option(...stateDirOption)
  .action((service: string, opts: { api?: string; stateDir: string; json: boolean }) => report(async () => (await import('./holds.js')).releaseHold(service, opts)));

program
  .command('rollback <service>')
  .description('revert the service\'s current deployment by hand, through the automatic revert\'s own path (recorded, told, crash-safe), and follow it until the recovery is verified; needs the API token like hold')
  .option('--to <image>', 'run this image (tag or ID, on the host) with the known-good settings instead of the known-good version; it becomes known-good')
  .option('--reason <text>', 'why; recorded and told (default: who ran it, from where)')
  .option('--yes', 'do not ask for confirmation (required without a terminal)', false)
  .option('--json', 'print the outcome as JSON instead of the progress lines (needs --yes)', false)
  .option('--api <url>', 'the daemon\'s API (default: from the state directory)')
  .option(...stateDirOption)
  .action(async (service: string, opts: { to?: string; reason?: string; yes: boolean; json: boolean; api?: string; stateDir: string }) => {
    process.exitCode = await (await import('./rollback.js')).rollbackByHand(service, opts);
  });

const positiveInt = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

program
  .command('history')
  .description('recorded deployments, newest first')
  .option('--service <name>', 'only this service')
  .option('--limit <n>', 'at most this many', positiveInt, 50)
  .option('--deployment <id>', 'one deployment: its decisions and every revert step with its result and output (follow-up steps, snapshot, down-migration)', positiveInt)
  .option('--json', 'print JSON', false)
  .option(...stateDirOption)
  .action(async (opts: { service?: string; limit: number; deployment?: number; json: boolean; stateDir: string }) => {
    process.exitCode = opts.deployment !== undefined
      ? await (await import('./deployment-view.js')).printDeployment({ deployment: opts.deployment, json: opts.json, stateDir: opts.stateDir })
      : await (await import('./views.js')).printHistory(opts);
  });

program
  .command('snapshots')
  .description('the database safety snapshots taken before reverting deployments with migrations (runbook Option 3), newest first; needs no daemon')
  .option('--service <name>', 'only this service')
  .option('--json', 'print JSON: [{id, service, deployment, path, size, created_at}]', false)
  .option(...stateDirOption)
  .action(async (opts: { service?: string; json: boolean; stateDir: string }) => {
    process.exitCode = await (await import('./snapshots.js')).printSnapshots(opts);
  });

program
  .command('restore-hint <id>')
  .description('print the pg_restore command that puts a database snapshot back; rollguard never restores by itself (runbook Option 4 is a human decision)')
  .option(...stateDirOption)
  .action(async (id: string, opts: { stateDir: string }) => {
    process.exitCode = await (await import('./snapshots.js')).printRestoreHint(id, opts);
  });

program
  .command('simulate')
  .description('replay the policy against Prometheus history: one deploy (--service S --deploy-at TIME), or rollguard\'s recorded deployments (--since 7d) showing which verdicts would change')
  .requiredOption('--policy <file>', 'policy YAML to replay')
  .option('--service <name>', 'the service (required with --deploy-at; a filter with --since)')
  .option('--deploy-at <time>', 'when the deploy happened: RFC 3339 (2026-11-26T14:05:00Z) or Unix seconds')
  .option('--window <duration>', 'how long to replay after the deploy (default: the policy\'s window)')
  .option('--since <duration>', 'replay every recorded deployment started this long ago or later, e.g. 7d')
  .option('--image <ref>', 'with --deploy-at: the image reference for {{image}} and {{version}}')
  .option('--container <name>', 'with --deploy-at: the container name for {{container}}')
  .option('--json', 'print JSON', false)
  .option(...stateDirOption)
  .action(async (opts: { policy: string; service?: string; deployAt?: string; window?: string; since?: string; image?: string; container?: string; json: boolean; stateDir: string }) => {
    const { runSimulate, UsageError } = await import('./simulate.js');
    try {
      process.exitCode = await runSimulate(opts);
    } catch (err) {
      if (!(err instanceof ConfigError || err instanceof UsageError)) throw err;
      process.stderr.write(`${err.message}\n`);
      process.exitCode = exitCodeFor(err);
    }
  });

program
  .command('demo')
  .description('see rollguard work in about a minute on this Docker host: builds a tiny app (no registry), deploys a bad version, and shows rollguard reverting it; removes all it created')
  .option('--listen <addr>', 'address of rollguard\'s status page (default 127.0.0.1:9817, or a free port)')
  .option('--port <n>', 'loopback port of the demo app (default 9818, or a free port)', positiveInt)
  .option('--prometheus <url>', 'also judge the app\'s error rate through this Prometheus (it must scrape the app\'s /metrics)')
  .option('--prefix <prefix>', 'name prefix of the demo\'s containers and images', (v: string) => {
    if (!/^[a-z0-9][a-z0-9_.-]*$/.test(v)) throw new InvalidArgumentError('lowercase letters, digits, ".", "_" and "-"');
    return v;
  }, 'rollguard-demo-')
  .option('--keep-running', 'after the revert, keep the demo and its status page up until Ctrl-C', false)
  .action(async (opts: { listen?: string; port?: number; prometheus?: string; prefix: string; keepRunning: boolean }) => {
    process.exit(await (await import('./demo/run-demo.js')).demoCommand(opts));
  });

addExamples(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`rollguard: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(exitCodeFor(err));
});
