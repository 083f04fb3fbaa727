import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { probeReadiness } from './probe.js';

describe('rollguard init: probing the guessed readiness URLs', () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/ready') res.writeHead(200).end('ok');
      else if (req.url === '/') res.writeHead(302, { location: '/login' }).end();
      else if (req.url === '/slow') return; // headers never come
      else res.writeHead(404).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a URL answering 200 passes; a redirect, a 404, a closed port and silence each fail with what happened', async () => {
    // A port just freed: nothing listens on it.
    const spare = http.createServer().listen(0, '127.0.0.1');
    await once(spare, 'listening');
    const closed = `http://127.0.0.1:${(spare.address() as AddressInfo).port}/`;
    spare.close();
    await once(spare, 'close');

    const results = await probeReadiness([`${base}/ready`, `${base}/`, `${base}/nothing`, closed, `${base}/slow`], undefined, 300);
    assert.deepEqual(results.get(`${base}/ready`), { ok: true });
    assert.deepEqual(results.get(`${base}/`), { ok: false, detail: 'HTTP 302, expected 200' }, 'a redirect is not followed: the check would not either');
    assert.deepEqual(results.get(`${base}/nothing`), { ok: false, detail: 'HTTP 404, expected 200' });
    assert.match(results.get(closed)?.detail ?? '', /ECONNREFUSED/);
    assert.deepEqual(results.get(`${base}/slow`), { ok: false, detail: 'no complete response within 300 ms' });
  });
});
