import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { ConfigError } from '../../config/errors.js';
import { loadPolicy } from '../../config/load-policy.js';
import type { Policy } from '../../config/policy.js';
import type { DiscoveredContainer } from './discovered.js';
import type { ProbeResult } from './readiness.js';
import { generatePolicy } from './generate.js';
import { scalar } from './render.js';

/** A running container as discovery reports it; host networking and nothing else unless said. */
function container(name: string, over: Partial<DiscoveredContainer> = {}): DiscoveredContainer {
  return { id: `${name}-id`.padEnd(64, '0'), name, image: `${name}:v1`, labels: {}, networkMode: 'host', exposedPorts: [], published: [], randomlyPublished: [], portEnv: {}, isRollguard: false, ...over };
}

const compose = (project: string, service: string, n: number): Record<string, string> => ({
  'com.docker.compose.project': project, 'com.docker.compose.service': service, 'com.docker.compose.container-number': String(n),
});

let dir: string;
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'rg-init-unit-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

/** Writes the text and loads it the way `rollguard policy check` does; a refusal fails with every problem listed. */
async function check(text: string): Promise<Policy> {
  const file = path.join(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, text);
  try {
    return await loadPolicy(file, {});
  } catch (err) {
    if (err instanceof ConfigError) assert.fail(`policy check refused the generated policy:\n${err.message}\n---\n${text}`);
    throw err;
  }
}

/**
 * Uncomments each commented-out block whose first line matches one of `starts`, with the lines
 * under it (commented at the same indentation and indented further).
 */
function uncomment(text: string, starts: RegExp[]): string {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)# (.*)$/.exec(lines[i] ?? '');
    if (!m || !starts.some((r) => r.test(m[2] ?? ''))) continue;
    const indent = m[1] ?? '';
    lines[i] = indent + (m[2] ?? '');
    while (lines[i + 1]?.startsWith(`${indent}#  `)) {
      i++;
      lines[i] = indent + (lines[i] ?? '').slice(indent.length + 2);
    }
  }
  return lines.join('\n');
}

/** What init's probe found at each URL: `200` answered as the check expects, else what it answered. */
function probed(answers: Record<string, 200 | string>): Map<string, ProbeResult> {
  return new Map(Object.entries(answers).map(([url, a]) => [url, a === 200 ? { ok: true } : { ok: false, detail: a }]));
}

/** The action of the service's readiness rule, and whether its recovery waits for readiness. */
function readinessRule(p: Policy, service: string): { action?: string; severity?: string; recovers: boolean } {
  const s = p.services[service];
  const rule = s?.rules.find((r) => r.signal === 'ready');
  return { action: rule?.action, severity: rule?.severity, recovers: Boolean(s?.recovery.some((r) => r.signal === 'ready')) };
}

function httpUrl(p: Policy, service: string, signal = 'ready'): string | undefined {
  const s = p.services[service]?.signals[signal];
  return s?.kind === 'http' ? s.url : undefined;
}

describe('rollguard init: the starter policy', () => {
  it('a HEALTHCHECK probing a URL with curl gives that URL as the readiness check, and its result as a signal', async () => {
    const { text } = generatePolicy([container('api', { healthcheck: ['CMD-SHELL', 'curl -fsS http://localhost:8000/health/ready/ || exit 1'] })], {
      probes: probed({ 'http://localhost:8000/health/ready/': 200 }),
    });
    const p = await check(text);
    assert.equal(httpUrl(p, 'api'), 'http://localhost:8000/health/ready/');
    assert.deepEqual(p.services.api?.signals.health, { kind: 'container', name: 'health', field: 'health' });
    assert.deepEqual(p.services.api?.match, { kind: 'container', name: 'api' });
    assert.deepEqual(p.services.api?.rules.filter((r) => r.action === 'rollback').map((r) => r.signal), ['ready', 'health']);
    assert.deepEqual(p.services.api?.recovery.map((r) => r.signal), ['ready', 'health']);
    assert.match(text, /# the URL its HEALTHCHECK probes/);
    assert.doesNotMatch(text, /curl -fsS/, 'the HEALTHCHECK command itself (which may hold a password) is not copied');
  });

  it('a wget HEALTHCHECK in exec form, with ${PORT} from the environment, gives the filled-in URL', async () => {
    const { text } = generatePolicy([container('shop', { healthcheck: ['CMD', 'wget', '-q', '--spider', 'http://127.0.0.1:${PORT}/ready'], portEnv: { PORT: 9000 } })]);
    assert.equal(httpUrl(await check(text), 'shop'), 'http://127.0.0.1:9000/ready');
  });

  it('a HEALTHCHECK URL on a published port is reached on the host port; the path is kept', async () => {
    const { text } = generatePolicy([container('web', {
      networkMode: 'bridge', healthcheck: ['CMD-SHELL', 'curl -f http://localhost:80/healthz'], exposedPorts: [80],
      published: [{ containerPort: 80, hostIp: '0.0.0.0', hostPort: 8081 }],
    })]);
    assert.equal(httpUrl(await check(text), 'web'), 'http://127.0.0.1:8081/healthz');
  });

  it('without a HEALTHCHECK URL, an exposed port on host networking gives its root, with a comment to fix the path', async () => {
    const { text } = generatePolicy([container('cache-ui', { exposedPorts: [8080] })]);
    const p = await check(text);
    assert.equal(httpUrl(p, 'cache-ui'), 'http://127.0.0.1:8080/');
    assert.match(text, /# guessed from EXPOSE 8080: FIX THE PATH/);
    assert.equal(p.services['cache-ui']?.signals.health, undefined, 'no HEALTHCHECK, no health signal');
  });

  it('a PORT variable is the port hint of a host-network container; a published port is reached on its host address', async () => {
    const { text } = generatePolicy([
      container('hostnet', { portEnv: { PORT: 18080 } }),
      container('bridged', { networkMode: 'bridge', exposedPorts: [3000], published: [{ containerPort: 3000, hostIp: '127.0.0.1', hostPort: 13000 }] }),
    ]);
    const p = await check(text);
    assert.equal(httpUrl(p, 'hostnet'), 'http://127.0.0.1:18080/');
    assert.equal(httpUrl(p, 'bridged'), 'http://127.0.0.1:13000/');
  });

  it('an EXPOSEd port is preferred to a PORT variable the image sets for something else', async () => {
    const { text } = generatePolicy([container('app', { exposedPorts: [9090], portEnv: { PORT: 18080 } })]);
    const p = await check(text);
    assert.equal(httpUrl(p, 'app'), 'http://127.0.0.1:9090/');
    assert.match(text, /it also listens on 18080/);
  });

  it('nothing to guess (a database port, an unpublished port): container signals only, said in a comment', async () => {
    const { text } = generatePolicy([
      container('db', { exposedPorts: [5432] }),
      container('worker', { networkMode: 'bridge', exposedPorts: [8080] }),
    ]);
    const p = await check(text);
    for (const name of ['db', 'worker']) {
      assert.deepEqual(Object.keys(p.services[name]?.signals ?? {}), ['restarts'], name);
      assert.deepEqual(p.services[name]?.recovery, [], name);
    }
    assert.match(text, /port 5432 is PostgreSQL, not HTTP/);
    assert.match(text, /port 8080 is exposed but not published/);
    assert.match(text, /# No readiness check was guessed, so this service is watched by its container state only/);
  });

  it('one service per Compose service, its replicas together, matched by project and service', async () => {
    const { text, plan } = generatePolicy([
      container('shop_web_2', { labels: compose('shop', 'web', 2), portEnv: { PORT: 8000 } }),
      container('shop_web_1', { labels: compose('shop', 'web', 1), portEnv: { PORT: 8000 } }),
      container('shop_worker_1', { labels: compose('shop', 'worker', 1) }),
    ]);
    const p = await check(text);
    assert.deepEqual(Object.keys(p.services).sort(), ['web', 'worker']);
    assert.deepEqual(p.services.web?.match, { kind: 'compose', project: 'shop', service: 'web' });
    assert.match(plan.services.find((s) => s.key === 'web')?.found ?? '', /2 replicas here \(shop_web_1, shop_web_2\)/);
  });

  it('the same Compose service name in two projects is told apart by the project; a clash with a container name gets a suffix', async () => {
    const { text } = generatePolicy([
      container('a_web_1', { labels: compose('a', 'web', 1) }),
      container('b_web_1', { labels: compose('b', 'web', 1) }),
      container('a-web'),
    ]);
    const p = await check(text);
    assert.deepEqual(Object.keys(p.services).sort(), ['a-web', 'a-web-2', 'b-web']);
  });

  it('names with characters a service key cannot hold become valid keys; the match keeps the real name', async () => {
    const { text } = generatePolicy([
      container('odd', { labels: compose('my proj', 'web+api/v2', 1) }),
      container('9lives'),
      container('true'),
    ]);
    const p = await check(text);
    assert.deepEqual(Object.keys(p.services).sort(), ['9lives', 'true', 'web-api-v2']);
    assert.deepEqual(p.services['web-api-v2']?.match, { kind: 'compose', project: 'my proj', service: 'web+api/v2' });
    assert.deepEqual(p.services.true?.match, { kind: 'container', name: 'true' });
    assert.deepEqual(p.services['9lives']?.match, { kind: 'container', name: '9lives' });
  });

  it('Compose one-offs and rollguard itself get no service; Swarm tasks are grouped into their Swarm service', async () => {
    const swarm = (service: string, slot: number, stack?: string): Record<string, string> => ({
      'com.docker.swarm.service.name': service, 'com.docker.swarm.task.name': `${service}.${slot}`, ...(stack ? { 'com.docker.stack.namespace': stack } : {}),
    });
    const { text, plan } = generatePolicy([
      container('shop_web_run_1', { labels: { ...compose('shop', 'web', 1), 'com.docker.compose.oneoff': 'True' } }),
      container('rollguard', { isRollguard: true }),
      container('shop_api.1.abc', { labels: swarm('shop_api', 1, 'shop') }),
      container('shop_api.2.def', { labels: swarm('shop_api', 2, 'shop') }),
      container('edge.1.xyz', { labels: swarm('edge', 1), healthcheck: ['CMD', 'true'] }),
    ]);
    const p = await check(text);
    assert.deepEqual(Object.keys(p.services).sort(), ['edge', 'shop_api']);
    assert.deepEqual(p.services.shop_api?.match, { kind: 'swarm', service: 'shop_api', stack: 'shop' });
    assert.deepEqual(p.services.edge?.match, { kind: 'swarm', service: 'edge' });
    assert.deepEqual(plan.skipped.map((s) => s.name), ['rollguard', 'shop_web_run_1']);
    assert.match(text, /# Not included: shop_web_run_1, a Compose one-off container/);
    assert.match(text, /\{\{node_addr\}\}/, 'a Swarm service is shown how to address each task');
  });

  it('thresholds carry their runbook source; Prometheus and notifications are commented out, secrets only as ${ENV}', async () => {
    const { text } = generatePolicy([container('api', { exposedPorts: [8080] })], { probes: probed({ 'http://127.0.0.1:8080/': 200 }) });
    const p = await check(text);
    assert.equal(p.prometheus, undefined, 'rollguard works without Prometheus');
    assert.deepEqual(p.notifications, {});
    assert.equal(p.services.api?.maxAttempts, 2);
    assert.match(text, /max_attempts: 2 .*# runbook "Rollback Failed - Escalation": escalate after 2 failed attempts/);
    assert.match(text, /^# prometheus:$/m);
    assert.match(text, /^ {6}# - \{name: error rate above 5%, signal: error_rate, above: 0\.05/m);
    assert.match(text, /^ {6}# - \{signal: error_rate, below: 0\.01\}/m);
    assert.match(text, /^# notifications:$/m);
    // Uncommented, the examples are a valid policy whose secrets are ${ENV} references.
    const uncommented = uncomment(text, [/^prometheus:$/, /^notifications:$/, /^routes:$/, /^escalation:/, /^error_rate:$/, /^- \{name: error rate/, /^- \{signal: error_rate/]);
    const file = path.join(dir, 'uncommented.yaml');
    await writeFile(file, uncommented);
    const full = await loadPolicy(file, {
      SMTP_URL: 'smtp://127.0.0.1:2525', PAGERDUTY_ROUTING_KEY: 'k', SLACK_WEBHOOK_URL: 'https://hooks.example.com/x', PROM_PASSWORD: 'p',
    }).catch((err: unknown) => assert.fail(`the commented examples, uncommented, are refused:\n${(err as Error).message}\n---\n${uncommented}`));
    assert.ok(full.prometheus, 'the Prometheus example');
    assert.deepEqual(Object.keys(full.notifications).sort(), ['chat', 'oncall-email', 'pager']);
    assert.ok(full.services.api?.rules.some((r) => r.signal === 'error_rate' && r.above === 0.05 && r.action === 'rollback'), 'the runbook\'s error-rate rule');
    assert.ok(full.services.api?.recovery.some((r) => r.signal === 'error_rate' && r.below === 0.01), 'the runbook\'s success criterion');
  });

  it('without any running container it writes a commented template that policy check accepts', async () => {
    const { text, plan } = generatePolicy([]);
    assert.equal(plan.services.length, 0);
    const p = await check(text);
    assert.deepEqual(p.services, {});
    assert.match(text, /no running container was found/);
    assert.match(text, /^# {3}web:$/m);
  });

  it('a guessed readiness URL that answered 200 when probed reverts and is a recovery criterion', async () => {
    const { text, plan } = generatePolicy([container('cache-ui', { exposedPorts: [8080] })], { probes: probed({ 'http://127.0.0.1:8080/': 200 }) });
    assert.deepEqual(readinessRule(await check(text), 'cache-ui'), { action: 'rollback', severity: 'P0', recovers: true });
    assert.deepEqual(plan.services[0]?.verdict, { action: 'rollback' });
    assert.match(text, /# The readiness URL answered 200 when init probed it\./);
  });

  it('a guess that answered anything but 200 only notifies, says what it answered and what to fix, and is no recovery criterion', async () => {
    const { text } = generatePolicy([
      container('web', { exposedPorts: [8080] }),
      container('api', { healthcheck: ['CMD-SHELL', 'curl -f http://localhost:9000/ready'] }),
    ], { probes: probed({ 'http://127.0.0.1:8080/': 'HTTP 302, expected 200', 'http://localhost:9000/ready': 'request failed: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9000' }) });
    const p = await check(text);
    assert.deepEqual(readinessRule(p, 'web'), { action: 'notify', severity: 'P2', recovers: false });
    assert.equal(httpUrl(p, 'web'), 'http://127.0.0.1:8080/', 'the signal is kept, for policy check --live and for fixing');
    assert.match(text, /# Notify only, not verified: GET http:\/\/127\.0\.0\.1:8080\/ → HTTP 302, expected 200 now; fix the path, then make it severity: P0, action: rollback\./);
    // Its HEALTHCHECK (the container's own verdict) still reverts and is the recovery criterion.
    assert.deepEqual(readinessRule(p, 'api'), { action: 'notify', severity: 'P2', recovers: false });
    assert.deepEqual(p.services.api?.rules.filter((r) => r.action === 'rollback').map((r) => r.signal), ['health']);
    assert.deepEqual(p.services.api?.recovery.map((r) => r.signal), ['health']);
    assert.match(text, /GET http:\/\/localhost:9000\/ready → request failed: ECONNREFUSED.* now; check the URL/);
  });

  it('a guess that was not probed never reverts', async () => {
    const { text } = generatePolicy([container('cache-ui', { exposedPorts: [8080] })]);
    assert.deepEqual(readinessRule(await check(text), 'cache-ui'), { action: 'notify', severity: 'P2', recovers: false });
    assert.match(text, /not probed by init/);
  });

  it('https on 127.0.0.1 never reverts, even when the probe passed: a certificate is not made for a loopback address', async () => {
    const { text } = generatePolicy([container('tls', { exposedPorts: [8443] })], { probes: probed({ 'https://127.0.0.1:8443/': 200 }) });
    assert.deepEqual(readinessRule(await check(text), 'tls'), { action: 'notify', severity: 'P2', recovers: false });
    assert.match(text, /https on 127\.0\.0\.1 can never verify/);
  });

  it('a port published on a host port Docker picks (-P, ports: ["8080"]) gives no URL, and says to publish a fixed one', async () => {
    const { text } = generatePolicy([
      container('random', { networkMode: 'bridge', exposedPorts: [8080], randomlyPublished: [8080] }),
      container('hc-random', { networkMode: 'bridge', healthcheck: ['CMD-SHELL', 'wget -qO- http://127.0.0.1:80/ready'], exposedPorts: [80], randomlyPublished: [80] }),
    ]);
    const p = await check(text);
    assert.equal(httpUrl(p, 'random'), undefined);
    assert.equal(httpUrl(p, 'hc-random'), undefined);
    assert.match(text, /port 8080 is published on a host port Docker picks anew at each start .*publish a fixed one \(-p 127\.0\.0\.1:8080:8080/);
    assert.match(text, /its HEALTHCHECK probes port 80, published on a host port Docker picks anew/);
    assert.doesNotMatch(text, /port 8080 is exposed but not published/);
  });

  it('scalar() quotes whatever YAML would read as something else', () => {
    for (const s of ['web', 'true', 'null', '123', '1.5', 'a b', 'x: y', 'a,b', '{x}', '#c', 'http://127.0.0.1:8080/a?b=c', '~', '']) {
      assert.equal(parse(`k: ${scalar(s)}`).k, s, s);
      assert.equal(parse(`k: {v: ${scalar(s)}}`).k.v, s, `${s} in flow`);
    }
  });
});
