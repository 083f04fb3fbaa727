#!/usr/bin/env -S node --optimize-for-size
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/errors.js';
import { parseDuration } from '../config/duration.js';
import { loadPolicy } from '../config/load-policy.js';
import { createLogger } from '../daemon/logger.js';
import { runRollguard } from '../daemon/runtime.js';
import { StateDirBusyError } from '../daemon/state-dir.js';
// Each command's own modules are loaded when it runs, so `rollguard run` (a long-lived daemon)
// does not carry the code of the others (idle memory).

// The state directory holds every guarded container's spec, environment secrets included:
// whatever rollguard creates is private to its user, whatever umask it was started with.
process.umask(0o077);

const program = new Command();
const stateDirOption = ['--state-dir <dir>', 'state directory (embedded database, pid file)', process.env.ROLLGUARD_STATE_DIR ?? './var'] as const;

program.name('rollguard').description('Watches deployments on a Docker host and reverts bad ones to the last known-good container.').showHelpAfterError();

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
      process.exit(1);
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
      rollguard = await runRollguard({ policyFile: opts.policy, listen: opts.listen, dryRun: opts.dryRun, stateDir: opts.stateDir, databaseUrl: process.env.DATABASE_URL || undefined, instanceId: opts.instanceId, leaseTtlMs, log });
    } catch (err) {
      if (err instanceof ConfigError || err instanceof StateDirBusyError) {
        process.stderr.write(`${err.message}\n`);
        log.flush();
        process.exit(1);
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
  .action(async (file: string, opts: { live: boolean; image?: string; container?: string }) => {
    try {
      const p = await loadPolicy(file);
      const services = Object.values(p.services);
      process.stdout.write(`${file}: ok — ${services.length} service(s): ${services.map((s) => `${s.name} (${s.rules.length} rules)`).join(', ')}\n`);
      if (opts.live) {
        const { formatLiveCheck, liveCheck, liveCheckPassed } = await import('./live-check.js');
        const report = await liveCheck(p, { image: opts.image, container: opts.container });
        process.stdout.write(`${formatLiveCheck(report, p.prometheus?.url)}\n`);
        if (!liveCheckPassed(report)) process.exitCode = 1;
      }
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
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
  .action(async (channel: string, opts: { policy: string }) => {
    try {
      const p = await loadPolicy(opts.policy);
      const result = await (await import('./notify-test.js')).sendTestMessage(p, channel);
      process.stdout.write(`${result}\n`);
    } catch (err) {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
  });

const report = async (work: () => Promise<string>): Promise<void> => {
  try {
    process.stdout.write(`${await work()}\n`);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
};

program
  .command('hold <service>')
  .description('pause automatic reverts of the service\'s current deployment (fix forward); the revert proceeds at the deadline if the rule still breaches')
  .requiredOption('--for <duration>', 'how long, e.g. 10m')
  .requiredOption('--reason <text>', 'why; recorded and shown in status and alerts')
  .option('--api <url>', 'the daemon\'s API (default: from the state directory)')
  .option(...stateDirOption)
  .action((service: string, opts: { for: string; reason: string; api?: string; stateDir: string }) => report(async () => (await import('./holds.js')).placeHold(service, opts)));

program
  .command('release <service>')
  .description('end a hold or a migration freeze; a rule still breaching reverts at the next sample')
  .option('--api <url>', 'the daemon\'s API (default: from the state directory)')
  .option(...stateDirOption)
  .action((service: string, opts: { api?: string; stateDir: string }) => report(async () => (await import('./holds.js')).releaseHold(service, opts)));

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
  .option('--json', 'print JSON', false)
  .option(...stateDirOption)
  .action(async (opts: { service?: string; limit: number; json: boolean; stateDir: string }) => {
    process.exitCode = await (await import('./views.js')).printHistory(opts);
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
      process.exitCode = 1;
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`rollguard: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
