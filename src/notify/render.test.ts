import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EventKind, NotificationEvent } from './event.js';
import { formatDuration, renderEmail, renderPagerDuty, renderSlack, renderWebhook, shortImage, SLACK_LIMITS, type SlackBlock } from './render.js';

const BAD_IMAGE = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const GOOD_IMAGE = 'sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752';
const GRAPH = 'http://prometheus:9090/graph?g0.expr=sum(rate(http_requests_total%7Bcode%3D~%225..%22%7D%5B1m%5D))&g0.range_input=15m';

const deployment: NonNullable<NotificationEvent['deployment']> = {
  id: 42,
  fromRef: 'rollguard-fixture:v1',
  fromImage: GOOD_IMAGE,
  toRef: 'rollguard-fixture:v2',
  toImage: BAD_IMAGE,
  container: 'web',
  startedAt: '2024-05-01T03:00:00.000Z',
  state: 'rolled_back',
  attempts: 1,
};

const errorRate: NonNullable<NotificationEvent['rule']> = { name: 'error rate above 5%', signal: 'error_rate', threshold: 'above 0.05', for: 3, severity: 'P0', action: 'rollback' };

const samples: NotificationEvent['samples'] = [
  { at: '2024-05-01T03:00:15.000Z', value: 0.004, result: 'ok' },
  { at: '2024-05-01T03:00:30.000Z', value: null, result: 'no-data' },
  { at: '2024-05-01T03:00:45.000Z', value: 0.21, result: 'breach' },
  { at: '2024-05-01T03:01:00.000Z', value: 0.34, result: 'breach' },
  { at: '2024-05-01T03:01:15.000Z', value: 0.41, result: 'breach' },
];

const chart: NotificationEvent['chart'] = {
  signal: 'error_rate',
  threshold: 0.05,
  direction: 'above',
  points: [{ t: 1714532415000, v: 0.004 }, { t: 1714532430000, v: null }, { t: 1714532475000, v: 0.41 }],
  deployAt: 1714532400000,
  revertAt: 1714532476000,
};

const succeeded: NotificationEvent = {
  kind: 'rollback_succeeded',
  severity: 'P0',
  title: 'web: rolled back rollguard-fixture:v2 → v1',
  summary: 'error rate above 5% breached 3 times in a row; web is back on rollguard-fixture:v1.',
  at: '2024-05-01T03:01:19.400Z',
  service: 'web',
  deployment,
  rule: errorRate,
  samples,
  graphUrl: GRAPH,
  actions: [
    { kind: 'check-image', attempt: 0, startedAt: '2024-05-01T03:01:15.100Z', durationMs: 12, ok: true, detail: 'known-good image 60303ae22b99 (rollguard-fixture:v1)' },
    { kind: 'stop-bad', attempt: 0, startedAt: '2024-05-01T03:01:15.120Z', durationMs: 1_180, ok: true, detail: 'stop web (grace 10000 ms) and rename it web.rollguard-bad.42' },
    { kind: 'start-good', attempt: 1, startedAt: '2024-05-01T03:01:16.300Z', durationMs: 640, ok: true, detail: 'create and start web from sha256:60303ae22b99' },
    { kind: 'verify', attempt: 1, startedAt: '2024-05-01T03:01:16.950Z', durationMs: 2_430, ok: true, detail: 'recovered: error_rate below 0.01 (0.002), ready above 0 (1)' },
  ],
  criteria: [
    { signal: 'error_rate', threshold: 'below 0.01', measured: 0.002, holds: true },
    { signal: 'ready', threshold: 'above 0', measured: 1, holds: true },
  ],
  timeToRecoveryMs: 3_400,
  chart,
};

const failed: NotificationEvent = {
  kind: 'rollback_failed',
  severity: 'P0',
  title: 'web: ROLLBACK FAILED rollguard-fixture:v2 → v1',
  summary: 'recovery criteria not met after 2 attempt(s); the known-good container is running and the bad one is kept stopped as web.rollguard-bad.42',
  at: '2024-05-01T03:03:40.000Z',
  service: 'web',
  deployment: { ...deployment, state: 'rollback_failed', attempts: 2 },
  rule: errorRate,
  samples,
  actions: [
    { kind: 'check-image', attempt: 0, startedAt: '2024-05-01T03:01:15.100Z', durationMs: 12, ok: true, detail: 'known-good image 60303ae22b99' },
    { kind: 'stop-bad', attempt: 0, startedAt: '2024-05-01T03:01:15.120Z', durationMs: 1_180, ok: true, detail: 'stop web' },
    { kind: 'start-good', attempt: 1, startedAt: '2024-05-01T03:01:16.300Z', durationMs: 640, ok: true, detail: 'create and start web' },
    { kind: 'verify', attempt: 1, startedAt: '2024-05-01T03:01:16.950Z', durationMs: 120_000, ok: false, detail: 'attempt 1: not met: error_rate below 0.01 (got 0.3)' },
    { kind: 'start-good', attempt: 2, startedAt: '2024-05-01T03:03:17.000Z', durationMs: 700, ok: true, detail: 'create and start web' },
    { kind: 'verify', attempt: 2, startedAt: '2024-05-01T03:03:17.800Z', durationMs: 22_000, ok: false, detail: 'attempt 2: not met: error_rate below 0.01 (got 0.28)' },
  ],
  criteria: [
    { signal: 'error_rate', threshold: 'below 0.01', measured: 0.28, holds: false },
    { signal: 'ready', threshold: 'above 0', measured: 1, holds: true },
  ],
  escalation: ['DevOps Lead', 'CTO'],
};

const started: NotificationEvent = {
  kind: 'rollback_started',
  severity: 'P0',
  title: 'web: rolling back rollguard-fixture:v2 → v1',
  summary: 'error rate above 5% breached 3 times in a row.',
  at: '2024-05-01T03:01:15.000Z',
  service: 'web',
  deployment: { ...deployment, state: 'rolling_back', attempts: 0 },
  rule: errorRate,
  samples,
  graphUrl: GRAPH,
};

const breached: NotificationEvent = {
  kind: 'rule_breached',
  severity: 'P1',
  title: 'web: container restarting',
  summary: 'restart_count went above 2.',
  at: '2024-05-01T03:02:00.000Z',
  service: 'web',
  deployment: { ...deployment, state: 'watching', attempts: 0 },
  rule: { name: 'container restarting', signal: 'restarts', threshold: 'above 2', for: 1, severity: 'P1', action: 'notify' },
  samples: [{ at: '2024-05-01T03:02:00.000Z', value: 3, result: 'breach' }],
};

const inconclusive: NotificationEvent = {
  kind: 'watch_inconclusive',
  severity: 'P2',
  title: 'web: watch inconclusive',
  summary: 'only 40% of the samples had data (policy needs 80%).',
  at: '2024-05-01T03:10:00.000Z',
  service: 'web',
  deployment: { ...deployment, state: 'inconclusive', attempts: 0 },
};

const passed: NotificationEvent = {
  kind: 'deployment_passed',
  severity: 'P2',
  title: 'web: rollguard-fixture:v2 passed',
  summary: 'no rule fired in the 10 min window.',
  at: '2024-05-01T03:10:00.000Z',
  service: 'web',
  deployment: { ...deployment, state: 'passed', attempts: 0 },
};

const digest: NotificationEvent = {
  kind: 'digest',
  severity: 'P2',
  title: 'rollguard daily digest',
  summary: '',
  at: '2024-05-02T08:00:00.000Z',
  digest: { since: '2024-05-01T08:00:00.000Z', until: '2024-05-02T08:00:00.000Z', watched: 12, passed: 9, rolledBack: 2, rollbackFailed: 1, inconclusive: 0, pendingHolds: null },
};

const testEvent: NotificationEvent = {
  kind: 'test',
  severity: 'P2',
  title: 'channel oncall-email works',
  summary: 'Sent by `rollguard notify test`.',
  at: '2024-05-01T12:00:00.000Z',
};

/** Every string in a Slack message that Slack renders, with the limit it must respect. */
function slackTexts(blocks: SlackBlock[]): { where: string; text: string; max: number }[] {
  const out: { where: string; text: string; max: number }[] = [];
  for (const b of blocks) {
    if (b.type === 'header') out.push({ where: 'header', text: b.text.text, max: SLACK_LIMITS.headerText });
    if (b.type === 'section' && b.text) out.push({ where: 'section', text: b.text.text, max: SLACK_LIMITS.sectionText });
    if (b.type === 'section' && b.fields) for (const f of b.fields) out.push({ where: 'field', text: f.text, max: SLACK_LIMITS.fieldText });
    if (b.type === 'context') for (const c of b.elements) out.push({ where: 'context', text: c.text, max: SLACK_LIMITS.sectionText });
    if (b.type === 'actions') for (const a of b.elements) out.push({ where: 'button', text: a.text.text, max: SLACK_LIMITS.buttonText });
  }
  return out;
}

describe('shortImage', () => {
  it('strips sha256: and keeps 12 hex digits', () => {
    assert.equal(shortImage(BAD_IMAGE), '9f86d081884c');
    assert.equal(shortImage('60303ae22b998861'), '60303ae22b99');
  });

  it('says unknown when there is no image', () => {
    assert.equal(shortImage(null), 'unknown');
  });
});

describe('formatDuration', () => {
  const cases: [ms: number, text: string][] = [[850, '850 ms'], [3_400, '3.4 s'], [125_000, '2 min 05 s'], [3_720_000, '1 h 02 min']];
  for (const [ms, text] of cases) it(`shows ${ms} ms as ${text}`, () => assert.equal(formatDuration(ms), text));
});

describe('renderEmail', () => {
  it('subject of a successful rollback names the service, the change and the time to recovery', () => {
    assert.equal(renderEmail(succeeded).subject, '[rollguard] P0 web: rolled back rollguard-fixture:v2 → v1 (3.4 s)');
  });

  it('subject of a failed rollback starts with ROLLBACK FAILED and the number of attempts', () => {
    assert.equal(renderEmail(failed).subject, '[rollguard] P0 ROLLBACK FAILED web: rollguard-fixture:v2 → v1 after 2 attempts');
  });

  it('a rollback refused before any attempt (rollback limit, no revert target) says it was not attempted and nothing changed', () => {
    const refused: NotificationEvent = { ...failed, deployment: { ...(failed.deployment as NonNullable<NotificationEvent['deployment']>), attempts: 0 } };
    assert.equal(renderEmail(refused).subject, '[rollguard] P0 ROLLBACK FAILED web: rollguard-fixture:v2 → v1 not attempted');
    assert.match(renderEmail(refused).text, /did not revert web and changed nothing/);
  });

  const subjects: [EventKind, NotificationEvent, string][] = [
    ['rollback_started', started, '[rollguard] P0 web: rolling back rollguard-fixture:v2 → v1 (error rate above 5%)'],
    ['rule_breached', breached, '[rollguard] P1 web: rule "container restarting" breached on rollguard-fixture:v2'],
    ['watch_inconclusive', inconclusive, '[rollguard] P2 web: watch of rollguard-fixture:v2 inconclusive'],
    ['deployment_passed', passed, '[rollguard] P2 web: rollguard-fixture:v2 passed its watch'],
    ['digest', digest, '[rollguard] digest 2024-05-01 → 2024-05-02: 12 watched, 9 passed, 2 rolled back, 1 rollback failed, 0 inconclusive'],
    ['test', testEvent, '[rollguard] test: channel oncall-email works'],
  ];
  for (const [kind, event, subject] of subjects) {
    it(`subject of ${kind} says what happened`, () => assert.equal(renderEmail(event).subject, subject));
  }

  it('text leads with what happened and what rollguard did, then the evidence', () => {
    const lines = renderEmail(succeeded).text.split('\n');
    assert.equal(lines[0], 'web: rolled back rollguard-fixture:v2 → v1 (3.4 s)');
    assert.match(lines[1] as string, /^rollguard reverted web to rollguard-fixture:v1 and the recovery criteria hold; time to recovery 3\.4 s\.$/);
    const text = lines.join('\n');
    assert.ok(text.indexOf('Time to recovery') < text.indexOf('Last samples'));
  });

  it('text and HTML both carry the service, versions, rule, samples, graph, actions, criteria and time to recovery', () => {
    const { text, html } = renderEmail(succeeded);
    for (const [name, body] of [['text', text], ['html', html]] as const) {
      for (const needle of [
        'web',
        'rollguard-fixture:v2 (9f86d081884c)',
        'rollguard-fixture:v1 (60303ae22b99)',
        'error rate above 5%',
        'above 0.05',
        'for 3 consecutive samples',
        '2024-05-01 03:00:45 UTC',
        '0.41',
        'BREACH',
        'no data',
        'check-image',
        'stop-bad',
        '1.2 s',
        'verify',
        '2.4 s',
        'error_rate',
        'below 0.01',
        '0.002',
        '✓',
        'Time to recovery',
        '3.4 s',
      ]) {
        assert.ok(body.includes(needle), `${name} lacks ${needle}`);
      }
      assert.ok(!body.includes('sha256:9f86'), `${name} shows the sha256: prefix`);
    }
    assert.ok(text.includes(`Prometheus graph: ${GRAPH}`));
    assert.ok(html.includes(`<a href="${GRAPH.replace(/&/g, '&amp;')}">Prometheus graph</a>`));
  });

  it('HTML shows the samples as a table and the chart inline with its legend', () => {
    const { html } = renderEmail(succeeded);
    assert.match(html, /<h3>Last samples of error_rate \(above 0\.05\)<\/h3>\n<table[^>]*><tr><th[^>]*>Time<\/th><th[^>]*>Value<\/th><th[^>]*>Result<\/th><\/tr>/);
    assert.match(html, /<img src="cid:chart@rollguard" alt="error_rate over the watch window; breach above 0\.05"/);
    assert.ok(html.includes('blue = signal, red dashed = threshold, gray = deploy, green = revert'));
  });

  it('HTML has no image when the event has no chart', () => {
    assert.ok(!renderEmail(failed).html.includes('<img'));
  });

  it('a failed rollback carries the runbook escalation block before the evidence', () => {
    const { text, html } = renderEmail(failed);
    const block = [
      '🚨 ROLLBACK FAILED 🚨',
      'Deployment: rollguard-fixture:v2 → v1',
      'Attempts: 2',
      'Current State: rollguard-fixture:v1 is running but the recovery criteria are not met; rollguard-fixture:v2 is kept stopped',
      'Escalation: DevOps Lead, CTO',
    ].join('\n');
    assert.ok(text.includes(block));
    assert.ok(text.indexOf(block) < text.indexOf('Last samples'));
    assert.ok(text.includes('✗ error_rate below 0.01: measured 0.28'));
    assert.ok(html.includes(block), 'the HTML block is escaped text in a <pre>');
    assert.ok(html.includes('FAILED</strong>'));
  });

  it('a failed rollback with nothing changed says the bad version is still running', () => {
    const e: NotificationEvent = { ...failed, actions: [{ kind: 'check-image', attempt: 0, startedAt: failed.at, durationMs: 5, ok: false, detail: 'image gone' }], deployment: { ...deployment, attempts: 0 } };
    assert.ok(renderEmail(e).text.includes('Current State: nothing was changed; rollguard-fixture:v2 is still running'));
  });

  it('escapes every interpolated value in HTML', () => {
    const hostile = '<script>alert(1)</script>';
    const e: NotificationEvent = {
      ...failed,
      service: `web"><img src=x onerror=alert(2)>`,
      summary: `bad & worse ${hostile}`,
      deployment: { ...deployment, container: hostile, toRef: `evil/<b>:v2` },
      actions: [{ kind: 'stop-bad', attempt: 0, startedAt: failed.at, durationMs: 3, ok: false, detail: `stop ${hostile}: no such container` }],
      escalation: [`<a href="x">me</a>`],
      chart: { ...chart!, signal: `"><script>x</script>` },
    };
    const { html } = renderEmail(e);
    assert.ok(!html.includes('<script>'));
    assert.ok(!html.includes('<img src=x'));
    assert.ok(!html.includes('<b>'));
    assert.ok(!html.includes('<a href="x"'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(html.includes('bad &amp; worse'));
    assert.ok(html.includes('alt="&quot;&gt;&lt;script&gt;x&lt;/script&gt; over the watch window'));
  });

  it('a container name cannot add lines to the plain-text email', () => {
    const e: NotificationEvent = { ...failed, deployment: { ...deployment, container: 'web\nEscalation: nobody' } };
    assert.ok(!renderEmail(e).text.split('\n').includes('Escalation: nobody'));
  });

  it('shows a graph URL that is not http(s) as text, never as a link', () => {
    const { html } = renderEmail({ ...succeeded, graphUrl: 'javascript:alert(1)' });
    assert.ok(!html.includes('href="javascript:'));
    assert.ok(html.includes('Prometheus graph: javascript:alert(1)'));
  });

  it('keeps the subject on one line whatever the title holds', () => {
    assert.ok(!renderEmail({ ...testEvent, title: 'a\r\nBcc: victim@example.com' }).subject.includes('\n'));
  });

  it('a digest shows its counts', () => {
    const { text, html } = renderEmail(digest);
    for (const needle of ['Deployments watched: 12', 'Passed: 9', 'Rolled back: 2', 'Rollback failed: 1', 'Inconclusive: 0', 'Pending holds: unknown']) {
      assert.ok(text.includes(needle), `text lacks ${needle}`);
    }
    assert.match(html, /<td[^>]*>Rolled back<\/td><td[^>]*>2<\/td>/);
  });

  it('a test message says no deployment is affected', () => {
    assert.ok(renderEmail(testEvent).text.includes('This is a test message from rollguard; no deployment is affected.'));
  });

  it('a notify-only breach says rollguard changed nothing', () => {
    assert.ok(renderEmail(breached).text.includes('The rule only notifies: rollguard changed nothing.'));
  });
});

describe('renderPagerDuty', () => {
  it('a trigger carries the keys and the payload fields of the Events API v2', () => {
    const body = renderPagerDuty(succeeded, 'R0UT1NGKEY', 'rollguard/web/42', 'trigger');
    assert.deepEqual(Object.keys(body).sort(), ['dedup_key', 'event_action', 'links', 'payload', 'routing_key']);
    assert.equal(body.routing_key, 'R0UT1NGKEY');
    assert.equal(body.event_action, 'trigger');
    assert.equal(body.dedup_key, 'rollguard/web/42');
    const { custom_details: details, ...payload } = body.payload;
    assert.deepEqual(payload, {
      summary: 'web: rolled back rollguard-fixture:v2 → v1 (3.4 s) — error rate above 5% breached 3 times in a row; web is back on rollguard-fixture:v1.',
      source: 'web',
      severity: 'critical',
      timestamp: '2024-05-01T03:01:19.400Z',
      component: 'web',
      group: 'web',
      class: 'rollback_succeeded',
    });
    assert.deepEqual(body.links, [{ href: GRAPH, text: 'Prometheus graph of error_rate' }]);
    assert.equal(details.time_to_recovery, '3.4 s');
    assert.equal(details.from_bad, 'rollguard-fixture:v2 (9f86d081884c)');
    assert.equal(details.to_known_good, 'rollguard-fixture:v1 (60303ae22b99)');
    assert.deepEqual((details.samples as string[]).at(-1), '2024-05-01 03:01:15 UTC        0.41  BREACH');
    assert.equal((details.actions as string[]).length, 4);
    assert.deepEqual(details.recovery_criteria, ['✓ error_rate below 0.01: measured 0.002', '✓ ready above 0: measured 1']);
  });

  it('maps P0 to critical, P1 to error and P2 to warning', () => {
    assert.equal(renderPagerDuty(failed, 'k', 'd', 'trigger').payload.severity, 'critical');
    assert.equal(renderPagerDuty(breached, 'k', 'd', 'trigger').payload.severity, 'error');
    assert.equal(renderPagerDuty(inconclusive, 'k', 'd', 'trigger').payload.severity, 'warning');
  });

  it('a failed rollback carries the escalation block in custom_details', () => {
    const body = renderPagerDuty(failed, 'k', 'd', 'trigger');
    assert.match(body.payload.summary, /^ROLLBACK FAILED web: rollguard-fixture:v2 → v1 after 2 attempts/);
    assert.match(String(body.payload.custom_details.escalation), /Escalation: DevOps Lead, CTO$/);
    assert.equal(body.links, undefined, 'no graph, no links');
  });

  it('caps the summary at 1024 characters', () => {
    const body = renderPagerDuty({ ...succeeded, summary: 'x'.repeat(5_000) }, 'k', 'd', 'trigger');
    assert.equal(body.payload.summary.length, 1024);
    assert.ok(body.payload.summary.endsWith('…'));
  });

  it('a resolve carries only routing_key, event_action and dedup_key', () => {
    assert.deepEqual(renderPagerDuty(succeeded, 'R0UT1NGKEY', 'rollguard/web/42', 'resolve'), {
      routing_key: 'R0UT1NGKEY',
      event_action: 'resolve',
      dedup_key: 'rollguard/web/42',
    });
  });

  it('an event without a service comes from rollguard and names no component', () => {
    const { payload } = renderPagerDuty(digest, 'k', 'd', 'trigger');
    assert.equal(payload.source, 'rollguard');
    assert.equal(payload.component, undefined);
    assert.equal(payload.severity, 'warning');
  });
});

describe('renderSlack', () => {
  it('a rollback has a header, the fields, the samples as code, a graph button and the time', () => {
    const { text, blocks } = renderSlack(succeeded);
    assert.equal(text, '[rollguard] P0 web: rolled back rollguard-fixture:v2 → v1 (3.4 s)');
    assert.deepEqual(blocks[0], { type: 'header', text: { type: 'plain_text', text: '✅ web: rolled back rollguard-fixture:v2 → v1 (3.4 s)', emoji: true } });
    const fields = blocks.find((b) => b.type === 'section' && b.fields !== undefined);
    assert.ok(fields?.type === 'section' && fields.fields);
    const labels = fields.fields.map((f) => f.text.split('\n')[0]);
    for (const label of ['*Service*', '*From (bad)*', '*To (known-good)*', '*Rule*', '*Severity*']) assert.ok(labels.includes(label), `no ${label} field`);
    const samplesBlock = blocks.find((b) => b.type === 'section' && b.text?.text.startsWith('*Last samples'));
    assert.ok(samplesBlock?.type === 'section' && samplesBlock.text);
    assert.match(samplesBlock.text.text, /```[\s\S]*2024-05-01 03:01:15 UTC\s+0\.41\s+BREACH```$/);
    assert.deepEqual(blocks.find((b) => b.type === 'actions'), {
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Prometheus graph' }, url: GRAPH, action_id: 'rollguard-graph' }],
    });
    const context = blocks.at(-1);
    assert.ok(context?.type === 'context');
    assert.match(context.elements[0]?.text ?? '', /^2024-05-01 03:01:19 UTC · P0 · rollback_succeeded$/);
  });

  it('a failed rollback shows the escalation block right under the header', () => {
    const { text, blocks } = renderSlack(failed);
    assert.equal(text, '[rollguard] P0 ROLLBACK FAILED web: rollguard-fixture:v2 → v1 after 2 attempts — escalate: DevOps Lead, CTO');
    const second = blocks[1];
    assert.ok(second?.type === 'section' && second.text);
    assert.equal(second.text.text.split('\n')[0], '*🚨 ROLLBACK FAILED 🚨*');
    assert.ok(second.text.text.includes('*Attempts:* 2'));
    assert.ok(second.text.text.includes('*Escalation:* DevOps Lead, CTO'));
  });

  it('a digest shows its counts as fields', () => {
    const { blocks } = renderSlack(digest);
    assert.ok(JSON.stringify(blocks).includes('*Rolled back*\\n2'));
  });

  it('truncates an oversized event to Slack limits and keeps the newest samples', () => {
    const long = 'x'.repeat(4_000);
    const huge: NotificationEvent = {
      ...failed,
      service: `web-${long}`,
      summary: long,
      rule: { ...errorRate, name: long },
      deployment: { ...deployment, container: long, toRef: `registry.example.com/${'a'.repeat(300)}:v2` },
      samples: Array.from({ length: 2_000 }, (_, i) => ({ at: new Date(Date.UTC(2024, 4, 1, 3) + i * 15_000).toISOString(), value: i, result: 'breach' as const })),
      actions: Array.from({ length: 500 }, (_, i) => ({ kind: 'start-good', attempt: i, startedAt: failed.at, durationMs: i, ok: false, detail: long })),
      criteria: Array.from({ length: 200 }, (_, i) => ({ signal: `s${i}`, threshold: 'below 1', measured: 2, holds: false })),
      escalation: Array.from({ length: 300 }, (_, i) => `contact-${i}@example.com`),
      graphUrl: `http://prometheus:9090/graph?g0.expr=${'y'.repeat(4_000)}`,
    };
    const { text, blocks } = renderSlack(huge);
    assert.ok(blocks.length <= SLACK_LIMITS.blocks);
    assert.ok(text.length <= 3_000);
    for (const b of blocks) if (b.type === 'section' && b.fields) assert.ok(b.fields.length <= SLACK_LIMITS.fields);
    for (const { where, text: t, max } of slackTexts(blocks)) assert.ok(t.length <= max, `${where} is ${t.length} > ${max}`);
    const samplesBlock = blocks.find((b) => b.type === 'section' && b.text?.text.startsWith('*Last samples'));
    assert.ok(samplesBlock?.type === 'section' && samplesBlock.text);
    assert.match(samplesBlock.text.text, /```… \d+ earlier omitted\n/);
    assert.match(samplesBlock.text.text, /1999\s+BREACH```$/);
    assert.equal(blocks.find((b) => b.type === 'actions'), undefined, 'a graph URL over 3000 characters gets no button');
  });

  it('untrusted names cannot mention the channel or forge a link', () => {
    const e: NotificationEvent = { ...succeeded, deployment: { ...deployment, container: '<!channel> <http://evil.example|open me> & co' } };
    const json = JSON.stringify(renderSlack(e));
    assert.ok(!json.includes('<!channel>'));
    assert.ok(!json.includes('<http://evil'));
    assert.ok(json.includes('&lt;!channel&gt; &lt;http://evil.example|open me&gt; &amp; co'));
  });
});

describe('renderWebhook', () => {
  it('has exactly the documented snake_case keys', () => {
    assert.deepEqual(Object.keys(renderWebhook(succeeded)), [
      'version', 'event', 'severity', 'at', 'service', 'deployment', 'rule', 'samples', 'graph_url', 'actions', 'criteria',
      'time_to_recovery_ms', 'escalation', 'digest', 'title', 'summary',
    ]);
  });

  it('carries the evidence as recorded and never the chart', () => {
    const body = renderWebhook(succeeded);
    assert.equal(body.version, 1);
    assert.equal(body.event, 'rollback_succeeded');
    assert.equal(body.severity, 'P0');
    assert.deepEqual(body.deployment, {
      id: 42, container: 'web', from_ref: 'rollguard-fixture:v1', from_image: GOOD_IMAGE, to_ref: 'rollguard-fixture:v2', to_image: BAD_IMAGE,
      started_at: '2024-05-01T03:00:00.000Z', state: 'rolled_back', attempts: 1,
    });
    assert.deepEqual(body.rule, errorRate);
    assert.deepEqual(body.samples, samples);
    assert.equal(body.graph_url, GRAPH);
    assert.deepEqual(body.actions[1], { kind: 'stop-bad', attempt: 0, started_at: '2024-05-01T03:01:15.120Z', duration_ms: 1_180, ok: true, detail: 'stop web (grace 10000 ms) and rename it web.rollguard-bad.42' });
    assert.deepEqual(body.criteria[0], { signal: 'error_rate', threshold: 'below 0.01', measured: 0.002, holds: true });
    assert.equal(body.time_to_recovery_ms, 3_400);
    assert.equal(body.escalation, null);
    assert.equal(body.title, succeeded.title);
    const json = JSON.stringify(body);
    assert.ok(!json.includes('chart') && !json.includes('points'));
    assert.deepEqual(JSON.parse(json), body);
  });

  it('a failed rollback names who to call', () => {
    assert.deepEqual(renderWebhook(failed).escalation, ['DevOps Lead', 'CTO']);
  });

  it('absent evidence is null or empty, never a missing key', () => {
    const body = renderWebhook(testEvent);
    assert.equal(body.service, null);
    assert.equal(body.deployment, null);
    assert.equal(body.rule, null);
    assert.deepEqual([body.samples, body.actions, body.criteria], [[], [], []]);
    assert.equal(body.graph_url, null);
    assert.equal(body.time_to_recovery_ms, null);
    assert.equal(body.digest, null);
  });

  it('a digest carries its counts in snake_case', () => {
    assert.deepEqual(renderWebhook(digest).digest, {
      since: '2024-05-01T08:00:00.000Z', until: '2024-05-02T08:00:00.000Z', watched: 12, passed: 9, rolled_back: 2, rollback_failed: 1, inconclusive: 0, pending_holds: null,
    });
  });
});

describe('graph links never carry credentials', () => {
  // An event recorded with the Prometheus URL's credentials (an outbox row written before the
  // graph link was built from the redacted URL) still renders without them.
  const withCredentials: NotificationEvent = { ...succeeded, graphUrl: 'http://prom-user:prom-pass@prometheus:9090/graph?g0.expr=up&token=tok-123' };
  const clean = 'http://prometheus:9090/graph?g0.expr=up&token=redacted';
  const rendered: [string, () => string][] = [
    ['email (text and HTML)', () => { const m = renderEmail(withCredentials); return `${m.text}\n${m.html}`; }],
    ['PagerDuty', () => JSON.stringify(renderPagerDuty(withCredentials, 'routing-key', 'dedup', 'trigger'))],
    ['Slack', () => JSON.stringify(renderSlack(withCredentials))],
    ['webhook', () => JSON.stringify(renderWebhook(withCredentials))],
  ];
  for (const [channel, render] of rendered) {
    it(`${channel} shows the link without user, password or token`, () => {
      const out = render();
      for (const secret of ['prom-user', 'prom-pass', 'tok-123']) assert.equal(out.includes(secret), false, `${secret} in ${channel}`);
      assert.ok(out.includes(clean), `${channel} shows ${clean}`);
    });
  }

  it('a link without credentials is shown exactly as recorded', () => {
    assert.equal(renderWebhook(succeeded).graph_url, GRAPH);
  });
});
