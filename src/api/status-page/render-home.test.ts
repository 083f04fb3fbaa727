import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeHtml, html, value } from './html.js';
import { renderHome, watchProgress } from './render-home.js';
import { parseDeployments, parseStatus } from './serve.js';

const EVIL = `<script>alert("x")</script>&'`;
const NOW = new Date('2024-05-01T12:00:30Z');

function rule(name: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, signal: 'error_rate', key: 'error_rate', action: 'rollback', severity: 'P0', for: 3, threshold: 'above 0.05', limit: 0.05, direction: 'above', streak: 0, last: null, result: null, ...over };
}

function status(over: Record<string, unknown> = {}, service: Record<string, unknown> = {}): unknown {
  return {
    instance: 'host-1', policy: '/etc/rollguard/policy.yaml', dryRun: false, dockerConnected: true, activeWatches: 1,
    services: {
      web: {
        image: 'sha256:bbbbbbbbbbbbbbbbbbbb', ref: 'app:v2', replicas: 1,
        known_good: { ref: 'app:v1', image: 'sha256:aaaaaaaaaaaaaaaaaaaa', since: '2024-05-01T11:00:00.000Z' },
        hold: null, leader: true, leader_instance: 'host-1',
        watch: {
          deployment: 7, state: 'watching', to_ref: 'app:v2', from_ref: 'app:v1', samples: 30,
          started_at: new Date('2024-05-01T12:00:00Z'), window_ends_at: '2024-05-01T12:01:00.000Z', window_ms: 60_000,
          rules: [
            rule('error rate above 5%', { streak: 2, last: { at: '2024-05-01T12:00:29Z', value: 0.2 }, result: 'breach' }),
            rule('readiness failing', { signal: 'ready', key: 'ready', threshold: 'below 1', limit: 1, direction: 'below', last: { at: '2024-05-01T12:00:29Z', value: 1 }, result: 'ok' }),
            rule('latency', { signal: 'p99', key: 'p99', last: { at: '2024-05-01T12:00:29Z', value: null }, result: 'no-data' }),
            rule('restarting', { signal: 'restarts', key: 'restarts', action: 'notify', severity: 'P1' }),
          ],
        },
        ...service,
      },
    },
    ...over,
  };
}

/** The part of the page between two markers, to assert on one section at a time. */
function section(page: string, from: string, to: string): string {
  const start = page.indexOf(from);
  assert.ok(start >= 0, `page has ${from}`);
  const end = page.indexOf(to, start + from.length);
  return page.slice(start, end < 0 ? undefined : end);
}

describe('status page: rendering /', () => {
  it('escapeHtml escapes every character that could open markup or end an attribute', () => {
    assert.equal(escapeHtml(EVIL), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
    assert.equal(html`<p title="${EVIL}">${EVIL}</p>`.html, `<p title="${escapeHtml(EVIL)}">${escapeHtml(EVIL)}</p>`);
  });

  it('shows current and known-good versions, leadership and the watch progress through the window', () => {
    const page = renderHome(parseStatus(status()), [], NOW);
    const web = section(page, 'data-service="web"', '</article>');
    assert.match(web, /Current version<\/dt><dd class="current"><code>app:v2<\/code> <span class="none">\(bbbbbbbbbbbb\)/);
    assert.match(web, /Known-good<\/dt><dd class="known-good"><code>app:v1<\/code> <span class="none">\(aaaaaaaaaaaa\)<\/span> since <time datetime="2024-05-01T11:00:00.000Z">2024-05-01 11:00:00 UTC/);
    assert.match(web, /leader<\/span> this instance \(<code>host-1<\/code>\)/);
    assert.match(web, /data-percent="50">50% of the window: 30 s of 60 s, 30 samples/);
    assert.match(web, /href="\/deployments\/7">deployment #7<\/a>: <code>app:v1<\/code> → <code>app:v2<\/code>/);
  });

  it('shows each rule\'s last value against its threshold as ok, breach, no data or pending', () => {
    const web = section(renderHome(parseStatus(status()), [], NOW), '<table class="rules">', '</table>');
    const row = (name: string): string => section(web, `data-rule="${name}"`, '</tr>');
    assert.match(row('error rate above 5%'), /data-result="breach"[\s\S]*<td class="num">0.2<\/td>\s*<td>above 0.05<\/td>[\s\S]*data-state="breach"[\s\S]*2 \/ 3/);
    assert.match(row('readiness failing'), /data-result="ok"[\s\S]*<td class="num">1<\/td>\s*<td>below 1<\/td>[\s\S]*data-state="ok"/);
    assert.match(row('latency'), /data-result="no-data"[\s\S]*no data[\s\S]*data-state="no-data">no-data/);
    assert.match(row('restarting'), /data-result="pending"[\s\S]*not sampled yet[\s\S]*pending[\s\S]*notify \(P1\)/);
  });

  it('escapes service names, hold reasons, rule names and deployment reasons', () => {
    const s = status({}, { hold: { kind: 'hold', reason: EVIL, until: '2024-05-01T13:00:00Z', deployment_id: 7 } }) as { services: Record<string, unknown> };
    s.services = { [EVIL]: s.services.web };
    (s.services[EVIL] as { watch: { rules: unknown[] } }).watch.rules.push(rule(EVIL));
    const rows = [{ id: 3, service: EVIL, from_ref: EVIL, from_image: null, to_ref: 'app:v2', to_image: 'sha256:b', state: 'rolled_back', reason: EVIL, dry_run: false, attempts: 1, started_at: NOW, detected_at: NOW, window_ends_at: NOW, decided_at: NOW, recovered_at: null }];
    const page = renderHome(parseStatus(s), parseDeployments(rows), NOW);
    assert.doesNotMatch(page, /<script>alert/);
    assert.doesNotMatch(page, /"x"/);
    assert.ok(page.includes(`<h2>${escapeHtml(EVIL)}</h2>`));
    assert.ok(page.includes(`data-service="${escapeHtml(EVIL)}"`));
    assert.ok(page.includes(`Reason: <span class="reason">${escapeHtml(EVIL)}</span>`));
    assert.ok(page.includes(`<td class="reason">${escapeHtml(EVIL)}</td>`));
    assert.ok(page.includes(`data-rule="${escapeHtml(EVIL)}"`));
    // The only script is the daemon's own, by a same-origin path.
    assert.deepEqual([...page.matchAll(/<script[^>]*>/g)].map((m) => m[0]), ['<script src="/status-page.js" defer>']);
  });

  it('shows a hold with its deadline and a migration freeze until released', () => {
    const held = renderHome(parseStatus(status({}, { hold: { kind: 'hold', reason: 'fixing forward', until: new Date('2024-05-01T13:00:00Z'), deployment_id: 7 } })), [], NOW);
    assert.match(held, /data-hold="hold"><strong>Hold<\/strong>: automatic reverts paused for deployment <a href="\/deployments\/7">#7<\/a> until <time[^>]*>2024-05-01 13:00:00 UTC<\/time>\. Reason: <span class="reason">fixing forward/);
    const frozen = renderHome(parseStatus(status({}, { hold: { kind: 'freeze', reason: 'carries migrations', until: null, deployment_id: 7 } })), [], NOW);
    assert.match(frozen, /<strong>Migration freeze<\/strong>: automatic reverts paused for deployment <a href="\/deployments\/7">#7<\/a> until an operator releases it/);
  });

  it('a follower says which instance watches the service rather than that nothing is watched', () => {
    const page = renderHome(parseStatus(status({}, { leader: false, leader_instance: 'host-2', watch: null })), [], NOW);
    assert.match(page, /follower<\/span> led by <code>host-2<\/code>/);
    assert.match(page, /Watched by instance <code>host-2<\/code>/);
    assert.doesNotMatch(page, /No deployment being watched/);
    assert.doesNotMatch(page, /class="watch"/);
    const unled = renderHome(parseStatus(status({}, { leader: false, leader_instance: null, watch: null })), [], NOW);
    assert.match(unled, /No instance leads this service now/);
  });

  it('a leader with no watch says no deployment is being watched', () => {
    const page = renderHome(parseStatus(status({}, { watch: null })), [], NOW);
    assert.match(page, /No deployment being watched\./);
  });

  it('a revert running (the watch ended) shows "Reverting deployment #N (phase …)", not that nothing is watched', () => {
    const revert = { deployment: 7, to_ref: 'app:v2', from_ref: 'app:v1', phase: 'parked', attempts: 1 };
    const page = renderHome(parseStatus(status({}, { watch: null, revert })), [], NOW);
    const web = section(page, 'data-service="web"', '</article>');
    assert.match(web, /<section class="revert" data-deployment="7" data-phase="parked">/);
    assert.match(web, /Reverting <a href="\/deployments\/7">deployment #7<\/a> \(phase parked\), attempt 1/);
    assert.doesNotMatch(web, /No deployment being watched/);
  });

  it('a provisional (negative) deployment number has no link and says it is not recorded yet', () => {
    const s = status({}, { hold: { kind: 'freeze', reason: 'migrations', until: null, deployment_id: -3 } }) as { services: { web: { watch: { deployment: number } } } };
    s.services.web.watch.deployment = -3;
    const row = { id: -4, service: 'web', from_ref: 'app:v1', from_image: null, to_ref: 'app:v2', to_image: 'sha256:b', state: 'watching', reason: null, dry_run: false, attempts: 0, started_at: NOW, detected_at: NOW, window_ends_at: NOW, decided_at: null, recovered_at: null };
    const page = renderHome(parseStatus(s), parseDeployments([row]), NOW);
    assert.match(page, /Watching deployment #-3 <span class="none">\(not yet recorded; store unreachable\)<\/span>/);
    assert.match(page, /for deployment #-3 <span class="none">\(not yet recorded; store unreachable\)/);
    assert.match(page, /<td>#-4 <span class="none">\(not yet recorded; store unreachable\)<\/span><\/td>/);
    assert.doesNotMatch(page, /href="\/deployments\/-/);
  });

  it('with the store down the services still show and the deployments say they are unavailable', () => {
    const page = renderHome(parseStatus(status()), undefined, NOW);
    assert.match(page, /data-service="web"/);
    assert.match(page, /Deployments unavailable: the store is not answering/);
    assert.doesNotMatch(page, /<table class="deployments">/);
  });

  it('a rule whose last value is ±Inf (sent as "+Inf"/"-Inf" in JSON) shows +Inf/-Inf, not no data', () => {
    const body = JSON.parse(JSON.stringify(status())) as { services: { web: { watch: { rules: { last: { value: unknown } }[] } } } };
    const rules = body.services.web.watch.rules;
    (rules[0] as { last: { value: unknown } }).last.value = '+Inf';
    (rules[2] as { last: { value: unknown } }).last.value = '-Inf';
    const parsed = parseStatus(body);
    assert.equal(parsed.services.web?.watch?.rules[0]?.last?.value, Number.POSITIVE_INFINITY);
    const table = section(renderHome(parsed, [], NOW), '<table class="rules">', '</table>');
    assert.match(section(table, 'data-rule="error rate above 5%"', '</tr>'), /<td class="num">\+Inf<\/td>/);
    assert.match(section(table, 'data-rule="latency"', '</tr>'), /<td class="num">-Inf<\/td>/);
  });

  it('lists the latest deployments with their outcome and a link to each', () => {
    const rows = parseDeployments([
      { id: 9, service: 'web', from_ref: 'app:v1', from_image: 'sha256:a', to_ref: 'app:v2', to_image: 'sha256:b', state: 'rolled_back', reason: 'error rate above 5% breached', dry_run: false, attempts: 1, started_at: '2024-05-01T12:00:00Z', detected_at: '2024-05-01T12:00:01Z', window_ends_at: '2024-05-01T12:01:00Z', decided_at: '2024-05-01T12:00:20Z', recovered_at: null },
      { not: 'a deployment' },
    ]);
    assert.equal(rows.length, 1);
    const table = section(renderHome(parseStatus(status()), rows, NOW), '<table class="deployments">', '</table>');
    assert.match(table, /<a href="\/deployments\/9">#9<\/a><\/td><td>web<\/td>\s*<td><code>app:v1<\/code> → <code>app:v2<\/code><\/td><td><span class="badge bad" data-state="rolled_back">rolled back<\/span>/);
    assert.match(table, /error rate above 5% breached/);
  });

  it('a status body that does not fit renders an empty page rather than failing', () => {
    const page = renderHome(parseStatus('not json at all'), parseDeployments({}), NOW);
    assert.match(page, /The policy names no services\./);
    assert.match(page, /No deployments recorded yet\./);
  });

  it('watch progress stays within 0–100 % and needs a start', () => {
    const w = parseStatus(status()).services.web?.watch;
    assert.ok(w);
    assert.equal(watchProgress(w, new Date('2024-05-01T11:00:00Z'))?.percent, 0);
    assert.equal(watchProgress(w, new Date('2024-05-01T13:00:00Z'))?.percent, 100);
    assert.equal(watchProgress({ ...w, started_at: null }, NOW), undefined);
  });

  it('values print with 4 significant digits, infinities and no data in words', () => {
    assert.deepEqual([value(0.123456), value(null), value(Number.POSITIVE_INFINITY), value(12345678)], ['0.1235', 'no data', '+Inf', '12350000']);
  });
});
