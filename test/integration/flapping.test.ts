/**
 * Anti-flapping end to end ("never make an outage worse"): a redeployed bad image is reverted at
 * once (or only warned about), reverts are limited per service, and a restored known-good version
 * that breaches right after the revert is escalated, never reverted in turn. The real Docker
 * engine, Prometheus and PostgreSQL, rollguard as a child process, and real receivers on loopback:
 * a signed webhook and a PagerDuty Events API stand-in. Containers `rg-flap-*`, fixture port 18092.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  buildFixtures, dbQuery, deploy, pagerReceiver, docker, fixturePolicy, freshDatabase, inspect, removeContainers, startPrometheus,
  startRollguard, testSecret, waitFor, type HistoryRow, type Prometheus, type Rollguard,
} from './harness.js';

const PREFIX = 'rg-flap-';
const NAME = `${PREFIX}web`;
const SERVICE = 'flap';
const PORT = 18092;
const REFS = { good: 'rollguard-fixture:v1', good2: 'rollguard-fixture:v1.1', errors: 'rollguard-fixture:v2-errors', unready: 'rollguard-fixture:v2-unready' };
const FINAL = ['passed', 'rolled_back', 'rollback_failed', 'inconclusive', 'superseded'];
/** The fixture policy's fastest rollback rule: 3 consecutive breaching samples 1 s apart. */
const FOR_TIMES_INTERVAL_MS = 3 * 1_000;
const HOOK_SECRET = testSecret('flap-webhook');
const PD_KEY = testSecret('flap-pagerduty');

/** What the tests read of rollguard's webhook JSON. */
interface HookEvent {
  event: string;
  severity: string;
  deployment: { id: number; to_image: string; state: string } | null;
  rule: { name: string; action: string } | null;
  summary: string;
  title: string;
  escalation: string[] | null;
}

/** A loopback receiver for rollguard's signed webhook; a delivery whose signature does not verify is refused and remembered. */
async function webhookReceiver(): Promise<{ port: number; events: HookEvent[]; refused: string[]; close(): Promise<void> }> {
  const events: HookEvent[] = [];
  const refused: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(req.headers['x-rollguard-timestamp'] ?? '');
      const signature = String(req.headers['x-rollguard-signature'] ?? '');
      const expected = `sha256=${createHmac('sha256', HOOK_SECRET).update(`${timestamp}.${raw}`).digest('hex')}`;
      if (signature.length !== expected.length || !timingSafeEqual(Buffer.from(signature), Buffer.from(expected))) {
        refused.push(`bad signature on ${String(req.headers['x-rollguard-event'])}`);
        res.writeHead(401).end('bad signature');
        return;
      }
      events.push(JSON.parse(raw) as HookEvent);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port, events, refused,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A metrics script like the fixture's, but reading the error percentage from a bind-mounted host file the test can flip. */
const FLIPPABLE_METRICS = `#!/bin/sh
now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
start=$(cat /tmp/start)
pct=$(cat /flap/error_pct 2>/dev/null || echo "$ERROR_PCT")
total=$(( (now - start) * RPS / 100 ))
errors=$(( total * pct / 100 ))
printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain; version=0.0.4\\r\\n\\r\\n'
echo '# TYPE http_requests_total counter'
echo "http_requests_total{code=\\"200\\"} $(( total - errors ))"
echo "http_requests_total{code=\\"500\\"} $errors"
`;

describe('anti-flapping on a real Docker host (PostgreSQL store)', { timeout: 600_000 }, () => {
  let prom: Prometheus;
  let hook: Awaited<ReturnType<typeof webhookReceiver>>;
  let pager: Awaited<ReturnType<typeof pagerReceiver>>;
  let tmp: string;
  const images: Record<keyof typeof REFS, string> = { good: '', good2: '', errors: '', unready: '' };
  const running: Rollguard[] = [];
  const databases: { url: string; drop(): Promise<void> }[] = [];

  const channels = (): string => `notifications:
  hook:
    webhook:
      url: http://127.0.0.1:${hook.port}/flap
      secret: \${HOOK_SECRET}
  pager:
    pagerduty:
      routing_key: \${PD_KEY}
      url: http://127.0.0.1:${pager.port}/v2/enqueue
routes:
  P0: [hook, pager]
  P1: [hook]
  P2: [hook]
`;

  /** The fixture policy on this file's port and container, with `defaults` lines added and the test's channels. */
  const policy = (defaults: string[] = [], over: Parameters<typeof fixturePolicy>[1] = {}): string =>
    fixturePolicy(prom.url, { port: PORT, service: SERVICE, container: NAME, window: '8s', ...over })
      .replace('defaults:\n', `defaults:\n${defaults.map((l) => `  ${l}\n`).join('')}`) + channels();

  /** The known-good version running (with `runArgs`), a fresh database, and a daemon that adopted it. */
  const startCase = async (policyText: string, runArgs: string[] = []): Promise<{ rg: Rollguard; db: string }> => {
    await removeContainers(PREFIX);
    await deploy(NAME, REFS.good, runArgs, PORT);
    await prom.waitForData(`sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`);
    const db = await freshDatabase();
    databases.push(db);
    hook.events.length = 0;
    pager.events.length = 0;
    const rg = await startRollguard(policyText, { databaseUrl: db.url, env: { HOOK_SECRET, PD_KEY } });
    running.push(rg);
    await waitFor('rollguard to adopt the known-good version', async () => (await rg.status()).services[SERVICE]?.image === images.good);
    return { rg, db: db.url };
  };

  const deployAndSettle = async (rg: Rollguard, ref: string, runArgs: string[] = [], timeoutMs = 60_000): Promise<HistoryRow> => {
    const before = (await rg.history(SERVICE))[0]?.id ?? 0;
    await deploy(NAME, ref, runArgs, PORT);
    return waitFor(`the deployment of ${ref} to settle`, async () => {
      const newest = (await rg.history(SERVICE))[0];
      return newest && newest.id > before && FINAL.includes(newest.state) ? newest : undefined;
    }, timeoutMs);
  };

  const decisions = (db: string, deployment?: number) =>
    dbQuery<{ deployment_id: string; kind: string; detail: string | null; decided_at: Date }>(db,
      `SELECT deployment_id, kind, detail, decided_at FROM decisions ${deployment === undefined ? '' : 'WHERE deployment_id = $1'} ORDER BY id`,
      deployment === undefined ? [] : [deployment]);

  /** Waits until the webhook has received `event` for deployment `id`. */
  const told = (event: string, id: number): Promise<HookEvent> =>
    waitFor(`the webhook to receive ${event} for deployment #${id}`, () => hook.events.find((e) => e.event === event && e.deployment?.id === id), 30_000);

  before(async () => {
    const present = await Promise.all(Object.values(REFS).map((ref) => docker('image', 'inspect', ref).then(() => true, () => false)));
    if (present.includes(false)) await buildFixtures();
    for (const [k, ref] of Object.entries(REFS)) images[k as keyof typeof REFS] = await docker('image', 'inspect', '-f', '{{.Id}}', ref);
    tmp = await mkdtemp(path.join(os.tmpdir(), 'rg-flap-'));
    await removeContainers(PREFIX);
    hook = await webhookReceiver();
    pager = await pagerReceiver();
    prom = await startPrometheus([{ port: PORT, service: SERVICE }]);
  });

  afterEach(async () => {
    for (const rg of running.splice(0)) await rg.stop();
    await removeContainers(PREFIX);
    assert.deepEqual(hook.refused, [], 'every webhook delivery was signed correctly');
  });

  after(async () => {
    for (const rg of running.splice(0)) await rg.stop();
    await prom?.stop();
    await hook?.close();
    await pager?.close();
    await removeContainers(PREFIX);
    for (const db of databases) await db.drop().catch(() => {});
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('a bad image reverted, then redeployed → reverted immediately, before any sample, saying when it was reverted away from', async () => {
    const { rg, db } = await startCase(policy());
    const first = await deployAndSettle(rg, REFS.errors);
    assert.equal(first.state, 'rolled_back', `reason: ${first.reason}`);
    assert.match(first.reason ?? '', /error rate above 5%/);
    const marked = await dbQuery<{ image_id: string; deployment_id: string }>(db, 'SELECT image_id, deployment_id FROM bad_images WHERE service = $1', [SERVICE]);
    assert.deepEqual(marked.map((m) => [m.image_id, Number(m.deployment_id)]), [[images.errors, first.id]], 'the image reverted away from is marked bad');

    const again = await deployAndSettle(rg, REFS.errors);
    assert.notEqual(again.id, first.id);
    assert.equal(again.state, 'rolled_back', `reason: ${again.reason}`);
    const says = new RegExp(`^image ${REFS.errors} \\(${images.errors.slice(7, 19)}\\) was reverted away from at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC \\(deployment #${first.id}\\); redeployed, reverted immediately$`);
    assert.match(again.reason ?? '', says);
    const rollback = (await decisions(db, again.id)).find((d) => d.kind === 'rollback');
    assert.match(rollback?.detail ?? '', says, 'the decision says why');
    const samples = await dbQuery<{ n: string }>(db, "SELECT count(*) AS n FROM samples WHERE deployment_id = $1 AND stage = 'watch'", [again.id]);
    assert.equal(Number(samples[0]?.n), 0, 'reverted before a single sample was taken');
    const decidedMs = Date.parse(again.decided_at ?? '') - Date.parse(again.detected_at);
    assert.ok(decidedMs < FOR_TIMES_INTERVAL_MS, `decided ${decidedMs} ms after detection, not after for × interval (${FOR_TIMES_INTERVAL_MS} ms)`);

    const started = await told('rollback_started', again.id);
    assert.match(started.summary, /was reverted away from at .* \(deployment #\d+\); redeployed, reverted immediately/);
    assert.equal(started.rule?.name, 'bad image redeployed');
    await told('rollback_succeeded', again.id);
    const now = await inspect(NAME);
    assert.equal(now?.Image, images.good, 'the known-good version runs again');
    assert.equal(now?.State.Running, true);
  });

  it('on_bad_image: warn → a redeployed bad image is only warned about and watched like any other deployment', async () => {
    const { rg, db } = await startCase(policy(['on_bad_image: warn']));
    const first = await deployAndSettle(rg, REFS.errors);
    assert.equal(first.state, 'rolled_back', `reason: ${first.reason}`);

    const before = (await rg.history(SERVICE))[0]?.id ?? 0;
    await deploy(NAME, REFS.errors, [], PORT);
    const again = await waitFor('the redeploy to be detected', async () => (await rg.history(SERVICE)).find((d) => d.id > before));
    const warning = await told('rule_breached', again.id);
    assert.match(warning.summary, new RegExp(`was reverted away from at .* \\(deployment #${first.id}\\); redeployed, watched like any other deployment \\(on_bad_image: warn\\)`));
    assert.equal(warning.rule?.action, 'notify', 'the warning changes nothing');
    assert.ok((await decisions(db, again.id)).some((d) => d.kind === 'bad_image'), 'the warning is recorded');

    // Still watched: its 20 % errors breach the rule, which reverts it after for × interval like any deployment.
    const settled = await waitFor('the redeploy to settle', async () => {
      const d = (await rg.history(SERVICE)).find((x) => x.id === again.id);
      return d && FINAL.includes(d.state) ? d : undefined;
    }, 60_000);
    assert.equal(settled.state, 'rolled_back', `reason: ${settled.reason}`);
    assert.match(settled.reason ?? '', /^error rate above 5%/, 'reverted by the rule, not because the image was bad');
    const samples = await dbQuery<{ n: string }>(db, "SELECT count(*) AS n FROM samples WHERE deployment_id = $1 AND stage = 'watch'", [again.id]);
    assert.ok(Number(samples[0]?.n) >= 3, 'the rule needed its samples');
  });

  it('fault: three bad deploys under max_rollbacks {count: 2, per: 1h} → the third is not reverted and a P0 page says why', async () => {
    const { rg, db } = await startCase(policy(['max_rollbacks: {count: 2, per: 1h}']));
    const one = await deployAndSettle(rg, REFS.errors);
    assert.equal(one.state, 'rolled_back', `reason: ${one.reason}`);
    const two = await deployAndSettle(rg, REFS.unready);
    assert.equal(two.state, 'rolled_back', `reason: ${two.reason}`);
    // A third bad version, never reverted away from before: v1.1 made to answer 20 % errors.
    const three = await deployAndSettle(rg, REFS.good2, ['-e', 'ERROR_PCT=20']);
    assert.equal(three.state, 'rollback_failed', `reason: ${three.reason}`);
    assert.match(three.reason ?? '', /^rollback limit of 2 per 1h reached for flap; not reverting; a human must decide/);

    const running = await inspect(NAME);
    assert.equal(running?.Image, images.good2, 'the third version is left running: rollguard changed nothing');
    assert.equal(running?.State.Running, true);
    const all = await decisions(db);
    assert.equal(all.filter((d) => d.kind === 'rollback').length, 2, 'two reverts, no third');
    assert.ok(all.some((d) => d.kind === 'rollback_limit' && Number(d.deployment_id) === three.id));
    const actions = await dbQuery<{ n: string }>(db, 'SELECT count(*) AS n FROM actions WHERE deployment_id = $1', [three.id]);
    assert.equal(Number(actions[0]?.n), 0, 'no revert step was taken for the third');

    const page = await told('rollback_failed', three.id);
    assert.equal(page.severity, 'P0');
    assert.match(page.summary, /rollback limit of 2 per 1h reached for flap; not reverting; a human must decide/);
    const trigger = await waitFor('PagerDuty to be triggered for the third deployment', () =>
      pager.events.find((e) => e.event_action === 'trigger' && /ROLLBACK FAILED/.test(e.payload?.summary ?? '')), 30_000);
    assert.match(trigger.payload?.summary ?? '', /rollback limit of 2 per 1h reached for flap; not reverting; a human must decide/, 'the page says why');
  });

  it('fault: the restored known-good version breaches right after the revert → one revert, an escalation, no second revert', async () => {
    const script = path.join(tmp, 'metrics');
    const state = path.join(tmp, 'state');
    await writeFile(script, FLIPPABLE_METRICS);
    await chmod(script, 0o755);
    await mkdir(state, { recursive: true });
    await writeFile(path.join(state, 'error_pct'), '0\n');
    const mounts = ['-v', `${script}:/www/cgi-bin/metrics:ro`, '-v', `${state}:/flap:ro`];
    const maxAttempts = 2;
    const { rg, db } = await startCase(policy([], { maxAttempts, recoveryTimeout: '6s' }), mounts);
    const goodRate = async (): Promise<number | undefined> => {
      const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(`sum(rate(http_requests_total{service="${SERVICE}",code=~"5.."}[3s])) / sum(rate(http_requests_total{service="${SERVICE}"}[3s]))`)}`);
      const body = (await res.json()) as { data?: { result?: { value: [number, string] }[] } };
      const v = body.data?.result?.[0]?.value[1];
      return v === undefined ? undefined : Number(v);
    };
    await waitFor('the known-good version (metrics from the mounted script) to serve without errors', async () => (await goodRate()) === 0);

    // From now on the known-good version, when it is started again, answers 20 % errors.
    await writeFile(path.join(state, 'error_pct'), '20\n');
    // To the millisecond: whole seconds would also count the known-good deploy made just before.
    const since = new Date().toISOString();
    const bad = await deployAndSettle(rg, REFS.errors, [], 90_000);
    assert.equal(bad.state, 'rollback_failed', `reason: ${bad.reason}`);
    assert.match(bad.reason ?? '', new RegExp(`recovery criteria not met after ${maxAttempts} attempt\\(s\\)`));

    const escalation = await told('rollback_failed', bad.id);
    assert.equal(escalation.severity, 'P0');
    await waitFor('PagerDuty to be triggered', () => pager.events.some((e) => e.event_action === 'trigger' && /ROLLBACK FAILED/.test(e.payload?.summary ?? '')), 30_000);

    // Give rollguard the time to ping-pong if it were going to: a whole window and the rule's
    // for × interval, with the restored version breaching the rollback rule all along.
    const restored = await inspect(NAME);
    const failedAt = Date.now();
    await waitFor('the restored version to go on breaching for a window and more', async () => {
      const rate = await goodRate();
      return rate !== undefined && rate > 0.05 && Date.now() - failedAt > 8_000 + FOR_TIMES_INTERVAL_MS + 4_000;
    }, 90_000, 1_000);

    const history = await rg.history(SERVICE);
    assert.deepEqual(history.map((d) => d.id), [bad.id], 'no deployment after the revert: the restored version was not treated as a new one');
    const all = await decisions(db);
    assert.equal(all.filter((d) => d.kind === 'rollback').length, 1, 'exactly one revert decision');
    assert.ok(all.some((d) => d.kind === 'escalate'), 'the failed revert escalated');
    const starts = await dbQuery<{ n: string }>(db, "SELECT count(*) AS n FROM actions WHERE kind = 'start-good'", []);
    assert.equal(Number(starts[0]?.n), 1, 'the known-good version was started once: it served (running, answering) through each attempt, so it was kept, not recreated');
    const kept = await dbQuery<{ n: string }>(db, "SELECT count(*) AS n FROM actions WHERE kind = 'keep-serving'", []);
    assert.equal(Number(kept[0]?.n), maxAttempts - 1, 'kept for each further attempt');

    const until = new Date(Date.now() + 1_000).toISOString();
    const creates = (await docker('events', '--since', since, '--until', until, '--filter', 'type=container', '--filter', 'event=create', '--format', '{{.Actor.Attributes.name}}'))
      .split('\n').filter((n) => n === NAME);
    assert.ok(creates.length <= 1 + maxAttempts, `containers created under ${NAME}: ${creates.length} (the deploy and at most ${maxAttempts} revert attempts)`);

    const now = await inspect(NAME);
    assert.equal(now?.Id, restored?.Id, 'the restored container was left alone');
    assert.equal(now?.Image, images.good, 'still the known-good version: no revert to an older image, no revert to the bad one');
    assert.equal(now?.State.Running, true);
    const parked = await inspect(`${NAME}.rollguard-bad.${bad.id}`);
    assert.equal(parked?.Image, images.errors, 'the bad container is kept, set aside');
    assert.equal(parked?.State.Running, false);
    const status = await rg.status();
    assert.equal(status.services[SERVICE]?.watch, null, 'nothing is being watched, so nothing can be reverted');
    assert.match(await readFile(rg.logFile, 'utf8'), /ROLLBACK FAILED/);
  });
});
