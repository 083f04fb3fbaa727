import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createMetrics } from '../metrics.js';
import { startApi } from '../server.js';
import { escapeHtml } from './html.js';
import { fromStore, StoreUnavailable } from './serve.js';
import { renderDeployment, revertAt, revertMark, timeline } from './render-deployment.js';
import type { DeploymentDetail, RuleInfo } from './view.js';

const EVIL = `<img src=x onerror=alert(1)>"'&`;
const T0 = Date.parse('2024-05-01T12:00:00Z');
const at = (s: number): Date => new Date(T0 + s * 1000);

const errorRule: RuleInfo = { name: 'error rate above 5%', signal: 'error_rate', key: 'error_rate', action: 'rollback', severity: 'P0', for: 3, threshold: 'above 0.05', limit: 0.05, direction: 'above' };
const readyRule: RuleInfo = { name: 'readiness failing', signal: 'ready', key: 'ready', action: 'rollback', severity: 'P0', for: 3, threshold: 'below 1', limit: 1, direction: 'below' };

function detail(over: Partial<DeploymentDetail> = {}, deployment: Partial<DeploymentDetail['deployment']> = {}): DeploymentDetail {
  const values = [0, 0.01, 0.2, 0.25, 0.3];
  return {
    deployment: {
      id: 12, service: 'web', from_ref: 'app:v1', from_image: 'sha256:aaaaaaaaaaaaaaaa', to_ref: 'app:v2', to_image: 'sha256:bbbbbbbbbbbbbbbb',
      state: 'rolled_back', reason: 'error rate above 5% breached 3 times', dry_run: false, attempts: 1,
      started_at: at(0), detected_at: at(1), window_ends_at: at(60), decided_at: at(6), recovered_at: at(9), ...deployment,
    },
    samples: [
      ...values.map((v, i) => ({ stage: 'watch', signal: 'error_rate', taken_at: at(i + 2), value: v, result: v > 0.05 ? 'breach' : 'ok', rules: { 'error rate above 5%': v > 0.05 ? 'breach' : 'ok' }, detail: null })),
      { stage: 'recovery', signal: 'error_rate', taken_at: at(8), value: 0, result: 'ok', rules: {}, detail: null },
      { stage: 'watch', signal: 'ready', taken_at: at(2), value: null, result: 'no-data', rules: { 'readiness failing': 'no-data' }, detail: 'connection refused' },
    ],
    decisions: [{ decided_at: at(6), kind: 'rollback', rule: 'error rate above 5%', severity: 'P0', detail: 'error rate above 5% breached 3 times' }],
    actions: [
      { attempt: 1, kind: 'stop', started_at: at(6), finished_at: at(7), ok: true, detail: null },
      { attempt: 1, kind: 'verify', started_at: at(7), finished_at: at(9), ok: true, detail: 'recovery checks met' },
    ],
    rules: [errorRule, readyRule],
    live: false,
    ...over,
  };
}

describe('status page: rendering a deployment', () => {
  it('shows the outcome, the reason and the versions', () => {
    const page = renderDeployment(detail(), at(20));
    assert.match(page, /<code>app:v1<\/code> → <code>app:v2<\/code> <span class="outcome"><span class="badge bad" data-state="rolled_back">rolled back<\/span>/);
    assert.match(page, /<p class="reason" id="reason">error rate above 5% breached 3 times<\/p>/);
    assert.match(page, /<main id="live" data-live="false">/, 'a finished deployment stops updating');
  });

  it('draws one chart per rule with its samples, threshold label and the deploy and revert marked', () => {
    const page = renderDeployment(detail(), at(20));
    const charts = [...page.matchAll(/<figure class="chart" data-rule="([^"]+)" data-signal="([^"]+)" data-points="(\d+)">/g)].map((m) => [m[1], m[2], m[3]]);
    assert.deepEqual(charts, [['error rate above 5%', 'error_rate', '6'], ['readiness failing', 'ready', '1']]);
    assert.match(page, /<svg[^>]*role="img"/);
    assert.match(page, /threshold &gt; 0\.05/);
    assert.match(page, /threshold &lt; 1/);
    assert.match(page, /6 samples: 3 ok, 3 breach, 0 no data\./);
    assert.match(page, /1 samples: 0 ok, 0 breach, 1 no data\./);
    assert.equal(revertAt(detail()), at(6).getTime());
  });

  it('a deployment reverted without a recorded decision still marks the revert at its decision time; a passed one has none', () => {
    assert.equal(revertAt(detail({ decisions: [] })), at(6).getTime());
    assert.equal(revertAt(detail({ decisions: [] }, { state: 'passed' })), undefined);
  });

  it('marks the revert when its first step started, not when it was decided', () => {
    const d = detail({ decisions: [{ decided_at: at(4), kind: 'rollback', rule: 'error rate above 5%' }] });
    assert.deepEqual(revertMark(d), { at: at(6).getTime(), label: 'revert' });
    assert.match(renderDeployment(d, at(20)), />revert 12:00:06</);
  });

  it('a dry run that changed nothing is marked "would revert (dry run)" at its decision', () => {
    const d = detail({ actions: [], decisions: [{ decided_at: at(5), kind: 'rollback', rule: 'error rate above 5%', detail: 'dry run: breached' }] }, { state: 'would_roll_back', dry_run: true, recovered_at: null });
    assert.deepEqual(revertMark(d), { at: at(5).getTime(), label: 'would revert (dry run)' });
    const page = renderDeployment(d, at(20));
    assert.match(page, />would revert \(dry run\) 12:00:05</);
    assert.doesNotMatch(page, />revert 12:00:05</);
  });

  it('a failed revert is marked "revert (failed)"', () => {
    const d = detail({}, { state: 'rollback_failed', recovered_at: null });
    assert.deepEqual(revertMark(d), { at: at(6).getTime(), label: 'revert (failed)' });
    assert.match(renderDeployment(d, at(20)), />revert \(failed\) 12:00:06</);
  });

  it('a +Inf or -Inf sample is drawn as a point (on the edge), not a gap of no data', () => {
    const dots = (v: number | null): number => {
      const d = detail();
      d.samples = d.samples.map((x, i) => (i === 3 ? { ...x, value: v } : x));
      const fig = renderDeployment(d, at(20)).split('data-rule="error rate above 5%"')[1]?.split('</figure>')[0] ?? '';
      return (fig.match(/<circle/g) ?? []).length;
    };
    assert.equal(dots(Number.POSITIVE_INFINITY), dots(0.3));
    assert.equal(dots(Number.NEGATIVE_INFINITY), dots(0.3));
    assert.equal(dots(null), dots(0.3) - 1, 'no data is a gap');
  });

  it('lists deploy, detection, decisions, actions and recovery in time order, then the outcome', () => {
    const kinds = timeline(detail()).map((e) => e.kind);
    assert.deepEqual(kinds, ['deployed', 'detected', 'decision: rollback', 'action: stop', 'action: verify', 'recovered', 'outcome: rolled back']);
    const page = renderDeployment(detail(), at(20));
    assert.match(page, /<li class="bad" data-kind="decision: rollback">.*<strong>decision: rollback<\/strong> — <span class="reason">rule &quot;error rate above 5%&quot; · P0 · error rate above 5% breached 3 times/);
    assert.match(page, /<li class="good" data-kind="action: verify">.*attempt 1, succeeded in 2\.0 s · recovery checks met/);
  });

  it('an open deployment keeps updating and has no outcome yet', () => {
    const page = renderDeployment(detail({ live: true, decisions: [], actions: [] }, { state: 'watching', decided_at: null, recovered_at: null, reason: null }), at(5));
    assert.match(page, /<main id="live" data-live="true">/);
    assert.match(page, /data-state="watching"/);
    assert.doesNotMatch(page, /outcome:/);
  });

  it('escapes the service, refs, reasons, decision and sample details and rule names', () => {
    const page = renderDeployment(detail({
      decisions: [{ decided_at: at(6), kind: 'rollback', rule: EVIL, detail: EVIL }],
      samples: [{ stage: 'watch', signal: 'error_rate', taken_at: at(2), value: 1, result: 'breach', rules: {}, detail: EVIL }],
      rules: [{ ...errorRule, name: EVIL }],
    }, { service: EVIL, to_ref: EVIL, reason: EVIL }), at(20));
    assert.doesNotMatch(page, /<img/);
    assert.doesNotMatch(page, /onerror=alert\(1\)>/);
    assert.ok(page.includes(`<p class="reason" id="reason">${escapeHtml(EVIL)}</p>`));
    assert.ok(page.includes(`data-rule="${escapeHtml(EVIL)}"`));
    assert.ok(page.includes(`<title>rollguard · ${escapeHtml(EVIL)} #12</title>`));
  });
});

describe('status page: served by the API', () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  before(async () => {
    api = await startApi('127.0.0.1:0', {
      health: () => ({ ok: true }),
      status: () => ({ services: {} }),
      history: async () => [],
      hold: async () => ({}),
      markMigrations: async () => ({}),
      release: async () => ({}),
      rollback: async () => ({}),
      deployment: async (id) => {
        if (id === 13) {
          const d = detail();
          d.samples = d.samples.map((x, i) => (i < 2 ? { ...x, value: i === 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY } : x));
          return d;
        }
        return id === 12 ? detail() : undefined;
      },
    } as Parameters<typeof startApi>[1], createMetrics(), pino({ level: 'silent' }));
  });
  after(async () => api.close());

  it('/ is HTML whose policy allows only the daemon itself, and the script is served beside it', async () => {
    const res = await fetch(`${api.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(await res.text(), /<script src="\/status-page.js" defer><\/script>/);
    const js = await fetch(`${api.url}/status-page.js`);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(await js.text(), /DOMParser/);
  });

  it('the JSON view writes ±Infinity as "+Inf"/"-Inf" (JSON.stringify would make them null)', async () => {
    const json = (await (await fetch(`${api.url}/api/v1/deployments/13`)).json()) as { samples: { value: unknown }[] };
    assert.deepEqual(json.samples.slice(0, 2).map((x) => x.value), ['+Inf', '-Inf']);
  });

  it('a deployment as a page and as JSON; an unknown one is a 404 of each kind', async () => {
    assert.match(await (await fetch(`${api.url}/deployments/12`)).text(), /deployment #12/);
    const json = (await (await fetch(`${api.url}/api/v1/deployments/12`)).json()) as DeploymentDetail;
    assert.equal(json.deployment.id, 12);
    assert.equal(json.samples.length, 7);
    assert.equal(json.actions.length, 2);
    const missing = await fetch(`${api.url}/deployments/99`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /No deployment #99 is recorded/);
    assert.equal((await fetch(`${api.url}/api/v1/deployments/abc`)).status, 404);
    assert.equal((await fetch(`${api.url}/nowhere`)).status, 404);
  });
});

describe('status page: served by the API while the store is down', () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  const calls = { status: 0, pageStatus: 0 };
  const down = async (): Promise<never> => { throw new Error('connect ECONNREFUSED 127.0.0.1:5432'); };
  before(async () => {
    api = await startApi('127.0.0.1:0', {
      health: () => ({ ok: true }),
      status: () => { calls.status++; return { services: {}, notifications: {} }; },
      pageStatus: () => { calls.pageStatus++; return { services: { web: { ref: 'app:v2', image: 'sha256:bbbb', replicas: 1, leader: true, watch: null } } }; },
      history: down,
      hold: async () => ({}),
      markMigrations: async () => ({}),
      release: async () => ({}),
      rollback: async () => ({}),
      deployment: down,
    } as Parameters<typeof startApi>[1], createMetrics(), pino({ level: 'silent' }));
  });
  after(async () => api.close());

  it('/ answers 200 with the services from memory and says the deployments are unavailable', async () => {
    const res = await fetch(`${api.url}/`);
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /data-service="web"/);
    assert.match(page, /<code>app:v2<\/code>/);
    assert.match(page, /Deployments unavailable: the store is not answering/);
  });

  it('/ reads the light status (no notification counts from the store), not the full one', async () => {
    const before = { ...calls };
    await (await fetch(`${api.url}/`)).text();
    assert.equal(calls.pageStatus, before.pageStatus + 1);
    assert.equal(calls.status, before.status, 'status() (with its outbox aggregate) is not run per page poll');
  });

  it('a deployment page is a 503 HTML page saying the store is not answering; its JSON a 503 with the reason', async () => {
    const res = await fetch(`${api.url}/deployments/12`);
    assert.equal(res.status, 503);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await res.text(), /Deployment #12 is unavailable: the store is not answering/);
    const json = await fetch(`${api.url}/api/v1/deployments/12`);
    assert.equal(json.status, 503);
    const { error } = (await json.json()) as { error: string };
    assert.match(error, /the store is not answering/);
    assert.doesNotMatch(error, /ECONNREFUSED|5432/, "the driver's message stays out of the answer");
  });
});

describe('status page: reading the store with a time limit', () => {
  it('a read that does not answer in time is StoreUnavailable', async () => {
    await assert.rejects(fromStore(() => new Promise(() => {}), 20), (err: unknown) => err instanceof StoreUnavailable && /no answer within 20 ms/.test(err.message));
    assert.equal(await fromStore(async () => 5, 20), 5);
  });
});
