import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicy } from '../config/load-policy.js';
import type { HttpSignal } from '../config/policy.js';
import type { HttpHealthProvider } from '../signals/http-health.js';
import { formatLiveCheck, liveCheck } from './live-check.js';

describe('policy check --live shows URLs without their credentials', () => {
  const policy = parsePolicy(`version: 1
services:
  web:
    match: {container: web}
    signals:
      ready: {http: {url: "\${READY_URL}"}}
    rules:
      - {name: down, signal: ready, below: 1}
`, 'p.yaml', { READY_URL: 'http://probe:pw-1@127.0.0.1:8000/ready?token=tok-2&verbose=1' });

  it('a failed HTTP check names its URL without user, password or token; the client still gets them', async () => {
    const asked: string[] = [];
    const http = { measure: async (s: HttpSignal) => { asked.push(s.url); return { value: 0, detail: 'HTTP 503, expected 200', latencyMs: 1 }; } } as unknown as HttpHealthProvider;
    const report = await liveCheck(policy, {}, { http });
    assert.deepEqual(asked, ['http://probe:pw-1@127.0.0.1:8000/ready?token=tok-2&verbose=1']);
    const text = formatLiveCheck(report, 'http://prom-user:prom-pass@127.0.0.1:9090');
    assert.match(text, /ready: GET http:\/\/127\.0\.0\.1:8000\/ready\?token=redacted&verbose=1/);
    assert.match(text, /queried once against http:\/\/127\.0\.0\.1:9090 now/);
    for (const secret of ['probe', 'pw-1', 'tok-2', 'prom-user', 'prom-pass']) assert.equal(text.includes(secret), false, `${secret} in\n${text}`);
  });
});

describe('policy check --live on a Swarm service', () => {
  it('a signal addressed per task is skipped with why (it has no task to fill in); a whole-service one is probed', async () => {
    const policy = parsePolicy(`version: 1
services:
  web:
    match: {swarm_service: shop_web}
    signals:
      ready: {http: {url: "http://127.0.0.1:808{{slot}}/ready"}}
      front: {http: {url: "http://127.0.0.1:8000/{{service}}/ready"}}
    rules:
      - {name: down, signal: ready, below: 1}
      - {name: front down, signal: front, below: 1}
`, 'p.yaml', {});
    const asked: string[] = [];
    const http = { measure: async (s: HttpSignal) => { asked.push(s.url); return { value: 1, latencyMs: 1 }; } } as unknown as HttpHealthProvider;
    const report = await liveCheck(policy, {}, { http });
    assert.deepEqual(asked, ['http://127.0.0.1:8000/web/ready']);
    const ready = report.services[0]?.results.find((r) => r.signal === 'ready');
    assert.equal(ready?.outcome, 'skipped');
    assert.match(ready?.detail ?? '', /addressed per task \(\{\{slot\}\}\)/);
  });
});
