import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCertificates, type TestCertificates } from '../signals/prometheus-tls.fixture.js';
import { ConfigError, formatProblem } from './errors.js';
import { parsePolicy } from './load-policy.js';
import type { PrometheusSettings } from './policy.js';

type Env = Record<string, string | undefined>;

// The `prometheus:` block as Prometheus's own clients take it, loaded from a policy file in a
// temporary directory so that the `*_file` keys are read relative to it.

/** A policy whose line 2 is `prometheus:` and whose next lines are `block` (indent 2). */
const policyText = (block: string[]): string => [
  'version: 1',
  'prometheus:',
  ...block.map((l) => `  ${l}`),
  'services:',
  '  web:',
  '    match: {container: web}',
  '    signals: {up: {prometheus: up}}',
  '    rules: [{name: down, signal: up, below: 1}]',
  '',
].join('\n');

describe('the prometheus: block', () => {
  let dir: string;
  let certs: TestCertificates;
  const file = (): string => path.join(dir, 'policy.yaml');
  const load = (block: string[], env: Env = {}): PrometheusSettings => {
    const settings = parsePolicy(policyText(block), file(), env).prometheus;
    assert.ok(settings, 'prometheus settings missing');
    return settings;
  };
  const problems = (block: string[], env: Env = {}): string[] => {
    try {
      parsePolicy(policyText(block), 'p.yaml', env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map(formatProblem);
    }
    return assert.fail('expected the policy to be refused');
  };
  const fileProblems = (block: string[], env: Env = {}): string[] => {
    try {
      parsePolicy(policyText(block), file(), env);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      return err.problems.map((p) => formatProblem({ ...p, file: 'p.yaml' }));
    }
    return assert.fail('expected the policy to be refused');
  };

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'rg-prom-schema-'));
    certs = makeCertificates(dir);
    writeFileSync(path.join(dir, 'password'), 'pw-from-file\n');
    writeFileSync(path.join(dir, 'token'), 'token-from-file\r\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('with only url: the url without trailing slashes and a 5s timeout, nothing else', () => {
    assert.deepEqual(load(['url: http://prom:9090/']), { url: 'http://prom:9090', timeoutMs: 5_000 });
  });

  it('reads every key: basic_auth from the environment, headers, tls_config files relative to the policy, external_url', () => {
    const settings = load([
      'url: https://127.0.0.1:9090/prom/',
      'timeout: 2s',
      'external_url: https://prometheus.example.com/',
      'basic_auth: {username: rollguard, password: "${PROM_PASSWORD}"}',
      'headers: {X-Scope-OrgID: tenant-1, X-Shard: 3}',
      'tls_config:',
      '  ca_file: ca.crt',
      `  cert_file: ${path.basename(certs.clientCert)}`,
      `  key_file: ${certs.clientKey}`,
      '  server_name: localhost',
    ], { PROM_PASSWORD: 's3cret' });
    assert.deepEqual(settings, {
      url: 'https://127.0.0.1:9090/prom',
      timeoutMs: 2_000,
      externalUrl: 'https://prometheus.example.com',
      basicAuth: { username: 'rollguard', password: 's3cret' },
      headers: { 'X-Scope-OrgID': 'tenant-1', 'X-Shard': '3' },
      tls: {
        insecureSkipVerify: false,
        serverName: 'localhost',
        ca: readFileSync(certs.ca, 'utf8'),
        cert: readFileSync(certs.clientCert, 'utf8'),
        key: readFileSync(certs.clientKey, 'utf8'),
      },
    });
  });

  it('reads password_file and credentials_file without their trailing newlines', () => {
    assert.deepEqual(load(['url: http://prom:9090', 'basic_auth: {username: u, password_file: password}']).basicAuth, { username: 'u', password: 'pw-from-file' });
    assert.deepEqual(load(['url: http://prom:9090', 'authorization: {credentials_file: token}']).authorization, { type: 'Bearer', credentials: 'token-from-file' });
  });

  it('authorization: Bearer by default, another scheme when given; Basic is refused for basic_auth', () => {
    assert.deepEqual(load(['url: http://prom:9090', 'authorization: {credentials: "${TOKEN}"}'], { TOKEN: 't' }).authorization, { type: 'Bearer', credentials: 't' });
    assert.deepEqual(load(['url: http://prom:9090', 'authorization: {type: Token, credentials: "${TOKEN}"}'], { TOKEN: 't' }).authorization, { type: 'Token', credentials: 't' });
    assert.deepEqual(problems(['url: http://prom:9090', 'authorization: {type: basic, credentials: "${TOKEN}"}'], { TOKEN: 't' }), [
      'p.yaml:4: prometheus.authorization.type: use basic_auth for Basic authentication',
    ]);
  });

  it('tls_config: insecure_skip_verify is read, and defaults to false', () => {
    assert.deepEqual(load(['url: https://prom:9090', 'tls_config: {insecure_skip_verify: true}']).tls, { insecureSkipVerify: true });
  });

  it('refuses a password or token written literally, or as a default, on its line', () => {
    assert.deepEqual(problems(['url: http://prom:9090', 'basic_auth:', '  username: u', '  password: hunter2']), [
      'p.yaml:6: prometheus.basic_auth.password: a secret must not be written in the policy; use "${ENV_VAR}" or password_file',
    ]);
    assert.deepEqual(problems(['url: http://prom:9090', 'authorization:', '  credentials: abc']), [
      'p.yaml:5: prometheus.authorization.credentials: a secret must not be written in the policy; use "${ENV_VAR}" or credentials_file',
    ]);
    assert.deepEqual(problems(['url: http://prom:9090', 'authorization:', '  credentials: "${TOKEN:-abc}"']), [
      'p.yaml:5: prometheus.authorization.credentials: a default for a secret would write it in the policy; use "${ENV_VAR}" or credentials_file',
    ]);
  });

  it('wants exactly one of password and password_file, credentials and credentials_file', () => {
    assert.deepEqual(problems(['url: http://prom:9090', 'basic_auth: {username: u}']), [
      'p.yaml:4: prometheus.basic_auth: set exactly one of password (as "${ENV_VAR}") or password_file',
    ]);
    assert.deepEqual(problems(['url: http://prom:9090', 'authorization: {credentials: "${T}", credentials_file: token}'], { T: 'x' }), [
      'p.yaml:4: prometheus.authorization: set exactly one of credentials (as "${ENV_VAR}") or credentials_file',
    ]);
  });

  it('refuses credentials in headers, headers the client sets, and names that are not header names', () => {
    assert.deepEqual(problems(['url: http://prom:9090', 'headers:', '  authorization: "${T}"', '  Host: prom', '  "X Bad": 1'], { T: 'x' }), [
      'p.yaml:5: prometheus.headers.authorization: credentials do not go in headers: use prometheus.authorization or basic_auth (their secrets come from the environment or a file and are never shown)',
      'p.yaml:6: prometheus.headers.Host: Host is set by rollguard\'s HTTP client and cannot be given here',
      'p.yaml:7: prometheus.headers["X Bad"]: expected a header name: letters, digits and - (e.g. X-Scope-OrgID)',
    ]);
  });

  it('refuses two ways to authenticate, and credentials in the url beside basic_auth or authorization', () => {
    assert.deepEqual(problems([
      'url: "http://u:${PW}@prom:9090"',
      'basic_auth: {username: u, password: "${PW}"}',
      'authorization: {credentials: "${PW}"}',
    ], { PW: 'x' }), [
      'p.yaml:3: prometheus.url: credentials are given twice: remove the user:password@ from url, basic_auth holds them',
      'p.yaml:5: prometheus.authorization: set at most one of basic_auth or authorization',
    ]);
  });

  it('refuses tls_config for an http:// url, and a client certificate without its key', () => {
    assert.deepEqual(problems(['url: http://prom:9090', 'tls_config:', '  cert_file: client.crt']), [
      'p.yaml:4: prometheus.tls_config: tls_config applies to an https:// url only',
      'p.yaml:5: prometheus.tls_config.cert_file: cert_file and key_file go together (a client certificate and its key)',
    ]);
  });

  it('external_url: refused with credentials or a query string', () => {
    assert.deepEqual(problems(['url: http://prom:9090', 'external_url: "https://u:${PW}@prom.example.com"'], { PW: 'x' }), [
      'p.yaml:4: prometheus.external_url: external_url is shown in messages; it cannot carry credentials',
    ]);
    assert.deepEqual(problems(['url: http://prom:9090', 'external_url: https://prom.example.com/?a=1']), [
      'p.yaml:4: prometheus.external_url: a query string or fragment cannot be used: rollguard appends /graph?… to this URL',
    ]);
  });

  it('reports files it cannot read or use on their lines, all at once', () => {
    assert.deepEqual(fileProblems([
      'url: https://prom:9090',
      'basic_auth: {username: u, password_file: missing-password}',
      'tls_config:',
      '  ca_file: password',
      `  cert_file: ${certs.clientCert}`,
      `  key_file: ${certs.serverKey}`,
    ]), [
      'p.yaml:4: prometheus.basic_auth.password_file: cannot read missing-password: ENOENT',
      'p.yaml:6: prometheus.tls_config.ca_file: password holds no PEM certificate (-----BEGIN CERTIFICATE-----)',
      `p.yaml:8: prometheus.tls_config.key_file: ${certs.serverKey}: not the unencrypted PEM key of ${certs.clientCert}: key values mismatch`,
    ]);
  });

  it('reports problems of different keys together, sorted by line', () => {
    assert.deepEqual(problems([
      'url: http://prom:9090',
      'timeout: 0s',
      'basic_auth: {username: u, password: hunter2}',
      'headers: {Authorization: "${T}"}',
      'tls_config: {insecure_skip_verify: true}',
    ], { T: 'x' }), [
      'p.yaml:4: prometheus.timeout: must be greater than 0',
      'p.yaml:5: prometheus.basic_auth.password: a secret must not be written in the policy; use "${ENV_VAR}" or password_file',
      'p.yaml:6: prometheus.headers.Authorization: credentials do not go in headers: use prometheus.authorization or basic_auth (their secrets come from the environment or a file and are never shown)',
      'p.yaml:7: prometheus.tls_config: tls_config applies to an https:// url only',
    ]);
  });

  it('refuses unknown keys of the block and of its parts', () => {
    assert.deepEqual(problems(['url: http://prom:9090', 'bearer_token: x', 'tls_config: {ca: x}']), [
      'p.yaml:4: prometheus.bearer_token: unknown key',
      'p.yaml:5: prometheus.tls_config: tls_config applies to an https:// url only',
      'p.yaml:5: prometheus.tls_config.ca: unknown key',
    ]);
  });
});
