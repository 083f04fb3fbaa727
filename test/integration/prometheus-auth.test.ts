/**
 * The `prometheus:` block as Prometheus is run in production, against Debian's real Prometheus
 * started with `--web.config.file`: one asking for basic auth (a bcrypt hash), one serving TLS
 * with a private CA and asking for a client certificate, and a loopback proxy in front of the
 * first that records the tenant header. `policy check --live` and a short daemon run query
 * through them; without the credentials, the CA or the client certificate they fail and say
 * which setting to fix. The password never shows in the daemon's log, `status` or `history`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { makeCertificates, type TestCertificates } from '../../src/signals/prometheus-tls.fixture.js';
import {
  buildFixtures, deploy, freePort, freshDatabase, removeContainers, runCli, startRollguard, testSecret, waitFor,
  type FixtureImages, type Rollguard,
} from './harness.js';

const NAME = 'rg-promauth';
const SERVICE = 'promauth';
const USER = 'rollguard';
const QUERY = `sum(up{service="{{service}}"})`;

/** A GET over http or https with the given agent options; the status and body, or the error. */
function get(url: string, opts: { auth?: string; tls?: https.AgentOptions } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  const client = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(u, { headers: opts.auth ? { authorization: opts.auth } : {}, ...(opts.tls ?? {}), timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Debian's Prometheus with a web config, scraping the fixture every second, on a loopback port. */
async function startSecuredPrometheus(dir: string, name: string, webConfig: string, fixturePort: number, ready: (port: number) => Promise<boolean>): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  await writeFile(path.join(dir, `${name}.yml`), [
    'global: {scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s}',
    'scrape_configs:',
    `  - {job_name: ${SERVICE}, metrics_path: /cgi-bin/metrics, static_configs: [{targets: ["127.0.0.1:${fixturePort}"], labels: {service: ${SERVICE}}}]}`,
  ].join('\n'));
  await writeFile(path.join(dir, `${name}-web.yml`), webConfig);
  const log = openSync(path.join(dir, `${name}.log`), 'a');
  const child: ChildProcess = spawn('prometheus', [
    `--config.file=${path.join(dir, `${name}.yml`)}`, `--web.config.file=${path.join(dir, `${name}-web.yml`)}`,
    `--storage.tsdb.path=${path.join(dir, `${name}-data`)}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', log, log] });
  closeSync(log);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  try {
    await waitFor(`${name} Prometheus ready`, async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${await readFile(path.join(dir, `${name}.log`), 'utf8')}`);
      return ready(port).catch(() => false);
    }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, stop };
}

/** The results of `policy check --live --json`: outcome, value and detail per signal. */
interface LiveJson { ok: boolean; problems: unknown[]; live?: { service: string; results: { signal: string; outcome: string; value: number | null; detail?: string }[] }[] }

describe('Prometheus behind basic auth, TLS with a client certificate, and a tenant header (real Prometheus)', { timeout: 300_000 }, () => {
  let dir: string;
  let images: FixtureImages;
  let certs: TestCertificates;
  let fixturePort: number;
  let basic: { port: number; stop(): Promise<void> };
  let tls: { port: number; stop(): Promise<void> };
  let proxy: http.Server;
  let proxyPort: number;
  let db: { url: string; drop(): Promise<void> } | undefined;
  let rg: Rollguard | undefined;
  const password = testSecret('prometheus-password');
  /** The X-Scope-OrgID and Authorization of each request through the proxy, with its path and query. */
  const proxied: { path: string; tenant?: string; authorized: boolean }[] = [];
  const basicHeader = `Basic ${Buffer.from(`${USER}:${password}`).toString('base64')}`;

  before(async () => {
    images = await buildFixtures();
    await removeContainers(NAME);
    fixturePort = await freePort();
    await deploy(NAME, 'rollguard-fixture:v1', [], fixturePort);
    dir = await mkdtemp(path.join(os.tmpdir(), 'rg-promauth-'));
    certs = makeCertificates(dir);

    basic = await startSecuredPrometheus(dir, 'basic', `basic_auth_users:\n  ${USER}: ${bcrypt.hashSync(password, 10)}\n`, fixturePort,
      async (port) => (await get(`http://127.0.0.1:${port}/-/ready`, { auth: basicHeader })).status === 200);
    tls = await startSecuredPrometheus(dir, 'tls', [
      'tls_server_config:',
      `  cert_file: ${certs.serverCert}`,
      `  key_file: ${certs.serverKey}`,
      '  client_auth_type: RequireAndVerifyClientCert',
      `  client_ca_file: ${certs.ca}`,
    ].join('\n'), fixturePort, async (port) => (await get(`https://127.0.0.1:${port}/-/ready`, { tls: { ca: await readFile(certs.ca), cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) } })).status === 200);

    // A loopback proxy in front of the basic-auth Prometheus, recording the headers each request carried.
    proxy = http.createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      proxied.push({ path: `${u.pathname} ${u.searchParams.get('query') ?? ''}`, tenant: req.headers['x-scope-orgid'] as string | undefined, authorized: req.headers.authorization === basicHeader });
      const upstream = http.request({ host: '127.0.0.1', port: basic.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    proxyPort = await freePort();
    await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));

    // Both have scraped the fixture before the checks start.
    await waitFor('data in the basic-auth Prometheus', async () => {
      const r = await get(`http://127.0.0.1:${basic.port}/api/v1/query?query=${encodeURIComponent(`up{service="${SERVICE}"}`)}`, { auth: basicHeader });
      return r.status === 200 && r.body.includes('"value"');
    }, 30_000);
    const tlsOpts = { ca: await readFile(certs.ca), cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) };
    await waitFor('data in the TLS Prometheus', async () => {
      const r = await get(`https://127.0.0.1:${tls.port}/api/v1/query?query=${encodeURIComponent(`up{service="${SERVICE}"}`)}`, { tls: tlsOpts });
      return r.status === 200 && r.body.includes('"value"');
    }, 30_000);
  });

  after(async () => {
    await rg?.stop();
    await db?.drop();
    await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
    await basic?.stop();
    await tls?.stop();
    await removeContainers(NAME);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A policy in the temporary directory (so that *_file paths are relative to it) with this prometheus block. */
  async function policyFile(name: string, block: string[], rule = 'action: notify'): Promise<string> {
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(file, [
      'version: 1',
      'prometheus:',
      ...block.map((l) => `  ${l}`),
      'defaults: {window: 8s, interval: 1s, min_data_ratio: 0.5, stop_timeout: 1s}',
      'services:',
      `  ${SERVICE}:`,
      `    match: {container: ${NAME}}`,
      `    signals: {up: {prometheus: '${QUERY}'}}`,
      `    rules: [{name: target down, signal: up, below: 1, for: 3, ${rule}}]`,
      '',
    ].join('\n'));
    return file;
  }

  async function liveCheck(file: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; json: LiveJson; text: string }> {
    const withEnv = { ...process.env, ...env };
    const json = await runCli(['policy', 'check', '--live', '--json', file], { env: withEnv, timeoutMs: 30_000 });
    const text = await runCli(['policy', 'check', '--live', file], { env: withEnv, timeoutMs: 30_000 });
    assert.equal(json.code, text.code, 'the same verdict with and without --json');
    for (const out of [json.stdout, json.stderr, text.stdout, text.stderr]) assert.ok(!out.includes(password), 'the password is never printed');
    return { code: json.code, json: JSON.parse(json.stdout) as LiveJson, text: text.stdout + text.stderr };
  }

  const result = (j: LiveJson) => j.live?.[0]?.results[0];

  describe('basic auth', () => {
    it('policy check --live gets the value with the password from the environment or from password_file', async () => {
      const fromEnv = await liveCheck(await policyFile('basic-env', [`url: http://127.0.0.1:${basic.port}`, `basic_auth: {username: ${USER}, password: "\${PROM_PASSWORD}"}`]), { PROM_PASSWORD: password });
      assert.equal(fromEnv.code, 0, fromEnv.text);
      assert.deepEqual((({ outcome, value }) => ({ outcome, value }))(result(fromEnv.json) ?? { outcome: '', value: null }), { outcome: 'answered', value: 1 });

      await writeFile(path.join(dir, 'prom-password'), `${password}\n`, { mode: 0o600 });
      const fromFile = await liveCheck(await policyFile('basic-file', [`url: http://127.0.0.1:${basic.port}`, `basic_auth: {username: ${USER}, password_file: prom-password}`]));
      assert.equal(fromFile.code, 0, fromFile.text);
      assert.equal(result(fromFile.json)?.value, 1);
    });

    it('without the credentials, or with a wrong password, fails and names the setting', async () => {
      const none = await liveCheck(await policyFile('basic-none', [`url: http://127.0.0.1:${basic.port}`]));
      assert.equal(none.code, 1);
      assert.equal(result(none.json)?.outcome, 'failed');
      assert.equal(result(none.json)?.detail, 'Prometheus answered HTTP 401 Unauthorized: credentials missing or wrong (prometheus.basic_auth or prometheus.authorization)');
      assert.match(none.text, /FAILED\s+up\s+prometheus\s+Prometheus answered HTTP 401 Unauthorized: credentials missing or wrong/);
      assert.match(none.text, /live check FAILED: 0 answered, 1 failed/);

      const wrong = await liveCheck(await policyFile('basic-wrong', [`url: http://127.0.0.1:${basic.port}`, `basic_auth: {username: ${USER}, password: "\${PROM_PASSWORD}"}`]), { PROM_PASSWORD: 'not-the-password' });
      assert.equal(wrong.code, 1);
      assert.match(result(wrong.json)?.detail ?? '', /HTTP 401 Unauthorized/);
    });

    it('a literal password is refused at load, with its line, before anything is queried', async () => {
      const file = await policyFile('basic-literal', [`url: http://127.0.0.1:${basic.port}`, 'basic_auth:', `  username: ${USER}`, '  password: hunter2']);
      const r = await runCli(['policy', 'check', '--live', file], { timeoutMs: 30_000 });
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), `${file}:6: prometheus.basic_auth.password: a secret must not be written in the policy; use "\${ENV_VAR}" or password_file`);
    });
  });

  describe('TLS with a private CA and a client certificate', () => {
    const tlsBlock = (...lines: string[]): string[] => [`url: https://127.0.0.1:${tls.port}`, 'tls_config:', ...lines.map((l) => `  ${l}`)];
    const clientCert = (): string[] => [`cert_file: ${path.basename(certs.clientCert)}`, `key_file: ${path.basename(certs.clientKey)}`];

    it('policy check --live gets the value with ca_file, cert_file and key_file (and with server_name)', async () => {
      const ok = await liveCheck(await policyFile('tls-ok', tlsBlock(`ca_file: ${path.basename(certs.ca)}`, ...clientCert())));
      assert.equal(ok.code, 0, ok.text);
      assert.equal(result(ok.json)?.value, 1);
      const named = await liveCheck(await policyFile('tls-named', tlsBlock(`ca_file: ${path.basename(certs.ca)}`, ...clientCert(), 'server_name: localhost')));
      assert.equal(named.code, 0, named.text);
    });

    it('without the CA, with another CA, or without the client certificate, fails and names the setting', async () => {
      const noCa = await liveCheck(await policyFile('tls-no-ca', tlsBlock(...clientCert())));
      assert.equal(noCa.code, 1);
      assert.match(result(noCa.json)?.detail ?? '', /^Prometheus unreachable: .*certificate.* \(its certificate is not signed by a trusted CA: set prometheus\.tls_config\.ca_file\)$/);
      const otherCa = await liveCheck(await policyFile('tls-other-ca', tlsBlock(`ca_file: ${path.basename(certs.otherCa)}`, ...clientCert())));
      assert.equal(otherCa.code, 1);
      assert.match(result(otherCa.json)?.detail ?? '', /set prometheus\.tls_config\.ca_file/);
      const noClient = await liveCheck(await policyFile('tls-no-client', tlsBlock(`ca_file: ${path.basename(certs.ca)}`)));
      assert.equal(noClient.code, 1);
      assert.match(result(noClient.json)?.detail ?? '', /set prometheus\.tls_config\.cert_file and key_file/);
      const wrongName = await liveCheck(await policyFile('tls-wrong-name', tlsBlock(`ca_file: ${path.basename(certs.ca)}`, ...clientCert(), 'server_name: prometheus.example.com')));
      assert.equal(wrongName.code, 1);
      assert.match(result(wrongName.json)?.detail ?? '', /ERR_TLS_CERT_ALTNAME_INVALID.*set prometheus\.tls_config\.server_name/);
    });

    it('an unreadable or mismatched file is a policy problem with its line', async () => {
      const file = await policyFile('tls-bad-files', tlsBlock('ca_file: missing-ca.pem', `cert_file: ${path.basename(certs.clientCert)}`, `key_file: ${path.basename(certs.serverKey)}`));
      const r = await runCli(['policy', 'check', file], { timeoutMs: 30_000 });
      assert.equal(r.code, 1);
      assert.deepEqual(r.stderr.trim().split('\n'), [
        `${file}:5: prometheus.tls_config.ca_file: cannot read missing-ca.pem: ENOENT`,
        `${file}:7: prometheus.tls_config.key_file: server.key: not the unencrypted PEM key of client.crt: key values mismatch`,
      ]);
    });
  });

  describe('a tenant header, through a loopback proxy', () => {
    it('every request of policy check --live carries X-Scope-OrgID and the credentials', async () => {
      proxied.length = 0;
      const r = await liveCheck(await policyFile('tenant', [
        `url: http://127.0.0.1:${proxyPort}`,
        `basic_auth: {username: ${USER}, password: "\${PROM_PASSWORD}"}`,
        'headers: {X-Scope-OrgID: tenant-1}',
      ]), { PROM_PASSWORD: password });
      assert.equal(r.code, 0, r.text);
      assert.equal(result(r.json)?.value, 1);
      assert.ok(proxied.some((p) => p.path === '/api/v1/query time()'), 'the clock was read through the proxy');
      assert.ok(proxied.some((p) => p.path.startsWith('/api/v1/query sum(up')), 'the query went through the proxy');
      for (const p of proxied) {
        assert.equal(p.tenant, 'tenant-1', p.path);
        assert.ok(p.authorized, `${p.path} carried the basic-auth credentials`);
      }
    });
  });

  describe('the daemon', () => {
    it('samples through the authenticated Prometheus with the tenant header; the password is nowhere in its log, status or history', async () => {
      db = await freshDatabase();
      const policy = await readFile(await policyFile('daemon', [
        `url: http://127.0.0.1:${proxyPort}`,
        'timeout: 2s',
        'external_url: https://prometheus.example.com',
        `basic_auth: {username: ${USER}, password: "\${PROM_PASSWORD}"}`,
        'headers: {X-Scope-OrgID: tenant-1}',
      ]), 'utf8');
      proxied.length = 0;
      await deploy(NAME, 'rollguard-fixture:v1', [], fixturePort);
      rg = await startRollguard(policy, { databaseUrl: db.url, env: { PROM_PASSWORD: password } });
      const daemon = rg;
      await waitFor('adoption of v1', async () => (await daemon.status()).services[SERVICE]?.image === images.good, 60_000);

      await deploy(NAME, 'rollguard-fixture:v1.1', [], fixturePort);
      const deployment = await waitFor('the watch of v1.1', async () => (await daemon.history(SERVICE)).find((d) => d.to_image === images.good2), 60_000);
      type Detail = { samples: { signal: string; value: number | null; result: string; detail: string | null }[] };
      const samples = await waitFor('3 samples of up with a value', async () => {
        const res = await fetch(`${daemon.apiUrl}/api/v1/deployments/${deployment.id}`);
        if (!res.ok) return undefined;
        const ok = ((await res.json()) as Detail).samples.filter((s) => s.signal === 'up' && s.value === 1);
        return ok.length >= 3 ? ok : undefined;
      }, 60_000);
      assert.ok(samples.every((s) => s.result === 'ok'));
      const daemonRequests = proxied.filter((p) => p.path.startsWith('/api/v1/query'));
      assert.ok(daemonRequests.length >= 3, `the daemon queried through the proxy (${daemonRequests.length} requests)`);
      for (const p of daemonRequests) {
        assert.equal(p.tenant, 'tenant-1', p.path);
        assert.ok(p.authorized, `${p.path} carried the basic-auth credentials`);
      }

      const status = await daemon.cli('status', '--json');
      const history = await daemon.cli('history', '--json');
      assert.equal(status.code, 0, status.stderr);
      assert.equal(history.code, 0, history.stderr);
      await daemon.stop();
      const logs = await daemon.logs();
      assert.match(logs, /"msg"/, 'the daemon logged');
      for (const [what, text] of [['log', logs], ['status --json', status.stdout + status.stderr], ['history --json', history.stdout + history.stderr]] as const) {
        assert.ok(!text.includes(password), `the password is not in the ${what}`);
        assert.ok(!text.includes(Buffer.from(`${USER}:${password}`).toString('base64')), `the encoded credentials are not in the ${what}`);
      }
    });
  });
});
