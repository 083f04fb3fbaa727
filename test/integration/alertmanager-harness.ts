/**
 * Debian's Prometheus with alerting rules, and Debian's Alertmanager, for the Alertmanager tests:
 * each with its own config and data in a temporary directory, on loopback ports of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './harness.js';

/** A server process the test started, with where its output went. */
export interface Started {
  url: string;
  port: number;
  /** Its own output (config problems, failed notifications), for a failure's message. */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

async function launch(name: string, dir: string, argv: string[], readyUrl: string): Promise<{ child: ChildProcess; logs(): Promise<string>; stop(): Promise<void> }> {
  const logFile = path.join(dir, `${name}.log`);
  const log = openSync(logFile, 'a');
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', log, log] });
  closeSync(log);
  const logs = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`${name} ready`, async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${await logs()}`);
      return (await fetch(readyUrl).catch(() => undefined))?.ok;
    }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, logs, stop };
}

/**
 * Prometheus scraping one fixture app every second (its series labelled `service`), evaluating
 * `rules` (the text of a rule file) every second, and sending its alerts to the Alertmanager on
 * `alertmanagerPort` — which may start later: firing alerts are sent again every second.
 */
export async function startAlertingPrometheus(opts: { appPort: number; service: string; rules: string; alertmanagerPort: number }): Promise<Started> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-am-prom-'));
  const port = await freePort();
  await writeFile(path.join(dir, 'rules.yml'), opts.rules);
  await writeFile(path.join(dir, 'prometheus.yml'), [
    'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
    `rule_files: [${JSON.stringify(path.join(dir, 'rules.yml'))}]`,
    `alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:${opts.alertmanagerPort}"]}]}]}`,
    'scrape_configs:',
    `  - {job_name: ${opts.service}, metrics_path: /cgi-bin/metrics, static_configs: [{targets: ["127.0.0.1:${opts.appPort}"], labels: {service: ${opts.service}}}]}`,
  ].join('\n'));
  const url = `http://127.0.0.1:${port}`;
  const p = await launch('prometheus', dir, [
    'prometheus', `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--rules.alert.resend-delay=1s', '--log.level=warn',
  ], `${url}/-/ready`);
  return { url, port, logs: p.logs, stop: p.stop };
}

/**
 * Debian's `prometheus-alertmanager` on `port` (clustering off, its data in a temporary
 * directory), routing every alert to one webhook receiver — rollguard's — with the API token as
 * the bearer credentials, short group_wait and group_interval, and resolved alerts sent too.
 */
export async function startAlertmanager(opts: { port: number; webhookUrl: string; token: string }): Promise<Started> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-am-'));
  await writeFile(path.join(dir, 'alertmanager.yml'), [
    'route:',
    '  receiver: rollguard',
    '  group_by: [alertname, service]',
    '  group_wait: 1s',
    '  group_interval: 2s',
    '  repeat_interval: 1h',
    'receivers:',
    '  - name: rollguard',
    '    webhook_configs:',
    `      - url: ${JSON.stringify(opts.webhookUrl)}`,
    '        send_resolved: true',
    '        http_config:',
    `          authorization: {credentials: ${JSON.stringify(opts.token)}}`,
  ].join('\n'));
  const url = `http://127.0.0.1:${opts.port}`;
  const am = await launch('alertmanager', dir, [
    'prometheus-alertmanager', `--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${opts.port}`, '--cluster.listen-address=', '--log.level=warn',
  ], `${url}/-/ready`);
  return { url, port: opts.port, logs: am.logs, stop: am.stop };
}

/** A silence as Alertmanager's API v2 lists it. */
export interface Silence {
  id: string;
  status: { state: 'active' | 'pending' | 'expired' };
  matchers: { name: string; value: string; isRegex: boolean; isEqual?: boolean }[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
}

/** Every silence Alertmanager knows, expired ones included (`GET /api/v2/silences`). */
export async function silences(alertmanagerUrl: string): Promise<Silence[]> {
  const res = await fetch(`${alertmanagerUrl}/api/v2/silences`, { signal: AbortSignal.timeout(2_000) });
  if (!res.ok) throw new Error(`GET /api/v2/silences: HTTP ${res.status}`);
  return (await res.json()) as Silence[];
}

/** An alert as Alertmanager's API v2 lists it, with the silences muting it. */
export interface AlertmanagerAlert {
  labels: Record<string, string>;
  status: { state: string; silencedBy: string[] };
}

/** Every alert Alertmanager holds now (`GET /api/v2/alerts`). */
export async function alerts(alertmanagerUrl: string): Promise<AlertmanagerAlert[]> {
  const res = await fetch(`${alertmanagerUrl}/api/v2/alerts`, { signal: AbortSignal.timeout(2_000) });
  if (!res.ok) throw new Error(`GET /api/v2/alerts: HTTP ${res.status}`);
  return (await res.json()) as AlertmanagerAlert[];
}
