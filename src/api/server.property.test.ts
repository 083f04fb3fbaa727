import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { createMetrics } from './metrics.js';
import { startApi, type ApiSource } from './server.js';

const TOKEN = 'property-token';
const RUNS = Number(process.env.ROLLGUARD_PROPERTY_RUNS ?? 10_000);

describe('HTTP API under generated bodies', () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  const accepted: unknown[] = [];
  const source: ApiSource = {
    health: () => ({ ok: true }),
    status: () => ({}),
    history: async () => [],
    hold: async (service, forMs, reason) => { accepted.push({ service, forMs, reason }); return { service, until: new Date(forMs) }; },
    release: async (service) => ({ service }),
    markMigrations: async (service, image) => { accepted.push({ service, image }); return { service, image, applied: 'next' }; },
    rollback: async (service, opts) => { accepted.push({ service, ...opts }); return { service, deployment_id: 1 }; },
  };

  before(async () => {
    api = await startApi('127.0.0.1:0', source, createMetrics(), pino({ level: 'silent' }), TOKEN);
  });
  after(async () => api.close());

  const body = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.json({ maxDepth: 3 }),
    fc.record({ service: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), for: fc.oneof(fc.string(), fc.constantFrom('10m', '0s', '-1m', '1h')), reason: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    fc.record({ service: fc.string(), image: fc.oneof(fc.string(), fc.integer()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  );

  for (const path of ['/api/v1/holds', '/api/v1/migrations']) {
    it(`${RUNS} generated bodies to ${path}: a clear 4xx or success, never a 500`, async () => {
      await fc.assert(
        fc.asyncProperty(body, async (text) => {
          const res = await fetch(`${api.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: text });
          const answer = (await res.json()) as { error?: string };
          assert.ok([200, 201, 400].includes(res.status), `${res.status} for ${text}`);
          if (res.status === 400) assert.ok(answer.error && answer.error.length > 0);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('only well-formed bodies reach the daemon', () => {
    for (const a of accepted) {
      const x = a as Record<string, unknown>;
      assert.equal(typeof x.service, 'string');
      assert.ok((x.service as string).length > 0);
      if ('forMs' in x) assert.ok(typeof x.forMs === 'number' && x.forMs > 0 && typeof x.reason === 'string');
      else assert.equal(typeof x.image, 'string');
    }
  });

  it('a body over 64 KiB is refused with 413', async () => {
    const res = await fetch(`${api.url}/api/v1/holds`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x'.repeat(70_000) });
    assert.equal(res.status, 413);
  });
});
