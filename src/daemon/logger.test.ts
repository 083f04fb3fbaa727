import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AxiosError, AxiosHeaders, type InternalAxiosRequestConfig } from 'axios';
import { createLogger, withoutUrlCredentials } from './logger.js';

/** A logger writing JSON lines into an array. */
function capture(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => { lines.push(line); } } });
  return { lines, log };
}

describe('the logger keeps URL credentials out of the log', () => {
  it('strips userinfo and token parameters from URLs in any field, nested or not', () => {
    const { lines, log } = capture();
    log.info({ event: { graphUrl: 'http://prom-user:prom-pass@127.0.0.1:9090/graph?g0.expr=up' }, urls: ['https://h/x?token=tok-1'], detail: 'GET http://u:pw-2@h/ready failed' }, 'something happened');
    const line = lines.join('');
    for (const secret of ['prom-user', 'prom-pass', 'tok-1', 'pw-2']) assert.equal(line.includes(secret), false, `${secret} in ${line}`);
    const parsed = JSON.parse(line) as { event: { graphUrl: string }; urls: string[]; detail: string; msg: string };
    assert.equal(parsed.event.graphUrl, 'http://127.0.0.1:9090/graph?g0.expr=up');
    assert.deepEqual(parsed.urls, ['https://h/x?token=redacted']);
    assert.equal(parsed.detail, 'GET http://h/ready failed');
    assert.equal(parsed.msg, 'something happened');
  });

  it('logs an HTTP client error without its request config, headers or credentials', () => {
    const { lines, log } = capture();
    const config = { baseURL: 'http://prom-user:prom-pass@127.0.0.1:9090', url: '/api/v1/query', headers: new AxiosHeaders({ authorization: 'Basic cHJvbS11c2VyOnByb20tcGFzcw==' }) } as InternalAxiosRequestConfig;
    const err = new AxiosError('connect ECONNREFUSED 127.0.0.1:9090 (http://prom-user:prom-pass@127.0.0.1:9090)', 'ECONNREFUSED', config, { _header: 'Authorization: Basic cHJvbS11c2VyOnByb20tcGFzcw==' });
    err.cause = new Error('inner http://prom-user:prom-pass@127.0.0.1:9090');
    log.warn({ err }, 'query failed');
    const line = lines.join('');
    for (const secret of ['prom-user', 'prom-pass', 'cHJvbS11c2VyOnByb20tcGFzcw==']) assert.equal(line.includes(secret), false, `${secret} in ${line}`);
    const parsed = JSON.parse(line) as { err: { type: string; message: string; code: string; config?: unknown } };
    assert.equal(parsed.err.type, 'AxiosError');
    assert.equal(parsed.err.code, 'ECONNREFUSED');
    assert.equal(parsed.err.config, undefined);
    // pino appends the causes' messages to the error's.
    assert.equal(parsed.err.message, 'connect ECONNREFUSED 127.0.0.1:9090 (http://127.0.0.1:9090): inner http://127.0.0.1:9090');
  });

  it("logs a PostgreSQL error without its quote of the refused row (a container's environment)", () => {
    const { lines, log } = capture();
    const err = Object.assign(new Error('null value in column "image_ref" of relation "known_good" violates not-null constraint'), {
      code: '23502', detail: 'Failing row contains (web, null, {"Config": {"Env": ["DB_PASSWORD=row-secret"]}}).', where: 'SQL statement with row-secret-2',
    });
    log.error({ err }, 'the store rejected a write');
    const line = lines.join('');
    for (const secret of ['row-secret', 'Failing row']) assert.equal(line.includes(secret), false, `${secret} in ${line}`);
    const parsed = JSON.parse(line) as { err: { code: string; message: string } };
    assert.equal(parsed.err.code, '23502');
    assert.match(parsed.err.message, /violates not-null constraint/);
  });

  it('still redacts secret fields by path', () => {
    const { lines, log } = capture();
    log.info({ channel: { routingKey: 'rk-3' } }, 'sent');
    assert.equal(lines.join('').includes('rk-3'), false);
  });

  it('returns a value without URLs unchanged (the same object)', () => {
    const fields = { service: 'web', deployment: 7, nested: { n: [1, 'two'] } };
    assert.equal(withoutUrlCredentials(fields), fields);
  });
});

describe('log lines follow the usual JSON log conventions', () => {
  it('names the level ("info", "error") rather than numbering it, and gives the time in ISO 8601 UTC', () => {
    const { lines, log } = capture();
    const before = Date.now();
    log.info({ service: 'web' }, 'deployment detected');
    log.error({ service: 'web' }, 'ROLLBACK FAILED — escalate to a human');
    const [info, error] = lines.map((l) => JSON.parse(l) as { level: unknown; time: unknown; msg: string });
    assert.equal(info?.level, 'info');
    assert.equal(error?.level, 'error');
    for (const line of [info, error]) {
      assert.equal(typeof line?.time, 'string');
      assert.match(line?.time as string, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      const at = Date.parse(line?.time as string);
      assert.ok(at >= before - 1 && at <= Date.now() + 1, `${String(line?.time)} is now`);
    }
  });

  it('still filters by level: debug is left out at the default level', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(line); } } });
    log.debug('not shown');
    log.warn('shown');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { level: string }).level), ['warn']);
  });
});
