import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import pino from 'pino';
import type { FollowUpStep } from '../../config/policy.js';
import { runFollowUps } from './run.js';

type HttpStep = Extract<FollowUpStep, { kind: 'http' }>;

interface Seen { method?: string; url?: string; authorization?: string }

describe('http follow-up step', () => {
  let server: http.Server;
  let base: string;
  const seen: Seen[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
      const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
      if (req.url?.startsWith('/hang')) return; // never answers
      if (req.url?.startsWith('/big')) {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(`${'error detail '.repeat(1_000)}END`);
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ answered: status }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const run = (over: Partial<HttpStep> & { url: string }) => runFollowUps(
    [{ kind: 'http', method: 'POST', timeoutMs: 2_000, continueOnError: false, ...over }],
    { docker: {} as Docker, log: pino({ level: 'silent' }) },
  ).then((r) => r[0]!);

  it('sends the step\'s method and is ok for any 2xx when no status is set', async () => {
    const r = await run({ url: `${base}/internal/cache/warm?status=204` });
    assert.deepEqual([r.ok, r.label, r.detail], [true, `http POST ${base}/internal/cache/warm?status=204`, 'answered 204']);
    assert.equal(seen.at(-1)?.method, 'POST');
    const put = await run({ method: 'PUT', url: `${base}/x?status=201` });
    assert.equal(put.ok, true);
    assert.equal(seen.at(-1)?.method, 'PUT');
  });

  it('fails on a non-2xx answer with the status and the start of the body', async () => {
    const r = await run({ url: `${base}/warm?status=500` });
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'answered 500 (expected 2xx)\n{"answered":500}');
  });

  it('with a status set, only that status is ok, even another 2xx', async () => {
    assert.equal((await run({ url: `${base}/a?status=202`, status: 202 })).ok, true);
    assert.equal((await run({ url: `${base}/a?status=503`, status: 503 })).ok, true);
    const r = await run({ url: `${base}/a?status=200`, status: 204 });
    assert.equal(r.ok, false);
    assert.match(r.detail, /^answered 200 \(expected 204\)/);
  });

  it('shows only the start of a long error body', async () => {
    const r = await run({ url: `${base}/big?status=502` });
    assert.equal(r.ok, false);
    assert.match(r.detail, /^answered 502 \(expected 2xx\)\nerror detail error detail/);
    assert.ok(r.detail.length < 600, `detail is ${r.detail.length} chars`);
    assert.ok(!r.detail.includes('END'));
  });

  it('credentials in the URL are sent but appear in neither label nor detail', async () => {
    const url = `http://warm:hunter2-pw@127.0.0.1:${new URL(base).port}/warm?status=500&token=abc123`;
    const r = await run({ url });
    assert.equal(seen.at(-1)?.authorization, `Basic ${Buffer.from('warm:hunter2-pw').toString('base64')}`);
    const text = JSON.stringify(r);
    assert.ok(!text.includes('hunter2-pw') && !text.includes('abc123'), text);
    assert.equal(r.label, `http POST ${base}/warm?status=500&token=redacted`);
  });

  it('a server that does not answer in time fails the step as timed out', async () => {
    const started = Date.now();
    const r = await run({ url: `${base}/hang`, timeoutMs: 200 });
    assert.deepEqual([r.ok, r.detail], [false, 'timed out after 200 ms']);
    assert.ok(Date.now() - started < 1_500);
  });

  it('a refused connection fails with the reason', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await run({ url: `http://127.0.0.1:${port}/warm` });
    assert.equal(r.ok, false);
    assert.match(r.detail, /^request failed: .*ECONNREFUSED/);
  });
});
