/**
 * The follow-up steps of a verified revert against the real parts: Redis at 127.0.0.1:6379
 * (databases 11 and 12, keys prefixed `rgfu:`) and the Docker engine (containers named `rgfu-…`
 * from an image `rgfu-busybox:test` built here FROM scratch with the host's busybox-static).
 * Everything created is removed.
 */
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import pino from 'pino';
import { createClient } from 'redis';
import type { FollowUpStep } from '../../src/config/policy.js';
import { runFollowUps, type FollowUpResult } from '../../src/actions/follow-up/run.js';
import { docker as dockerCli, removeContainers, testSecret, waitFor } from './harness.js';

const REDIS = 'redis://127.0.0.1:6379';
const PREFIX = 'rgfu-';
const IMAGE = 'rgfu-busybox:test';
const PROJECT = 'rgfu-proj';
/** Stops at once on `docker stop` (a shell as PID 1 ignores SIGTERM unless it traps it). */
const SLEEPER = ['sh', '-c', "trap 'exit 0' TERM; sleep 3600 & wait"];

const log = pino({ level: 'silent' });
const engine = new Docker();
const base = { timeoutMs: 30_000, continueOnError: false };

function run(steps: FollowUpStep[], onStep?: (r: FollowUpResult) => Promise<void>): Promise<FollowUpResult[]> {
  return runFollowUps(steps, { docker: engine, log }, onStep);
}

type RedisClient = ReturnType<typeof createClient>;

async function redisDb(db: number): Promise<RedisClient> {
  const client = createClient({ url: `${REDIS}/${db}`, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function fill(client: RedisClient, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const batch = client.multi();
    for (let j = i; j < Math.min(count, i + 500); j += 1) batch.set(`${prefix}${j}`, 'v');
    await batch.exec();
  }
}

async function countKeys(client: RedisClient, pattern: string): Promise<number> {
  let n = 0;
  for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) n += keys.length;
  return n;
}

describe('follow-up steps against the real Redis', { timeout: 60_000 }, () => {
  let db11: RedisClient;
  let db12: RedisClient;

  before(async () => {
    db11 = await redisDb(11);
    db12 = await redisDb(12);
    for (const c of [db11, db12]) {
      for await (const keys of c.scanIterator({ MATCH: 'rgfu:*', COUNT: 1000 })) if (keys.length) await c.unlink(keys);
    }
  });

  after(async () => {
    for (const c of [db11, db12]) {
      for await (const keys of c.scanIterator({ MATCH: 'rgfu:*', COUNT: 1000 })) if (keys.length) await c.unlink(keys);
      c.destroy();
    }
  });

  it('with a pattern, deletes exactly its keys by SCAN + UNLINK over several batches, never KEYS or FLUSHALL', async () => {
    await fill(db11, 'rgfu:cache:', 2_500);
    await fill(db11, 'rgfu:session:', 40);
    await fill(db12, 'rgfu:cache:', 30);
    const commands: string[] = [];
    const monitor = await redisDb(11);
    await monitor.monitor((line: string) => {
      if (line.includes('[11 ')) commands.push(line);
    });
    try {
      const [r] = await run([{ ...base, kind: 'redis_flush', url: `${REDIS}/11`, pattern: 'rgfu:cache:*' }]);
      assert.deepEqual([r!.ok, r!.label, r!.detail], [true, `redis_flush rgfu:cache:* on ${REDIS}/11`, 'deleted 2500 keys matching rgfu:cache:* (SCAN + UNLINK)']);
      assert.equal(await countKeys(db11, 'rgfu:cache:*'), 0);
      assert.equal(await countKeys(db11, 'rgfu:session:*'), 40, 'other keys of the database stay');
      assert.equal(await countKeys(db12, 'rgfu:cache:*'), 30, 'the same keys in another database stay');
      await waitFor('the UNLINKs seen by MONITOR', () => commands.filter((c) => c.includes('"UNLINK"')).length >= 3 || undefined, 5_000, 20);
      const names = new Set(commands.map((c) => /\] "(\w+)"/.exec(c)?.[1]?.toUpperCase()));
      assert.ok(names.has('SCAN') && names.has('UNLINK'), [...names].join(' '));
      assert.ok(!names.has('KEYS') && !names.has('FLUSHALL') && !names.has('FLUSHDB') && !names.has('DEL'), [...names].join(' '));
      assert.ok(commands.some((c) => c.includes('"SCAN"') && c.includes('"COUNT" "1000"')), 'SCAN asks for 1000 keys at a time');
    } finally {
      monitor.destroy();
    }
  });

  it("without a pattern, FLUSHDB empties the URL's database and no other", async () => {
    await fill(db12, 'rgfu:any:', 25);
    await fill(db11, 'rgfu:kept:', 10);
    const [r] = await run([{ ...base, kind: 'redis_flush', url: `${REDIS}/12` }]);
    assert.equal(r!.ok, true, r!.detail);
    assert.match(r!.detail, /^FLUSHDB emptied database 12 \(\d+ keys\)$/);
    assert.equal(await db12.dbSize(), 0);
    assert.equal(await countKeys(db11, 'rgfu:kept:*'), 10, 'database 11 is untouched');
  });

  it('a password Redis refuses fails the step, and the password appears in neither label nor detail', async () => {
    const secret = testSecret('redis-password');
    const [r] = await run([{ ...base, kind: 'redis_flush', url: `redis://rgfu-user:${secret}@127.0.0.1:6379/11`, pattern: 'rgfu:*' }]);
    assert.equal(r!.ok, false);
    assert.match(r!.detail, /cannot connect to Redis: .+/);
    assert.ok(!JSON.stringify(r).includes(secret), JSON.stringify(r));
    assert.equal(r!.label, 'redis_flush rgfu:* on redis://127.0.0.1:6379/11');
  });
});

async function startedAt(name: string): Promise<string> {
  return (await engine.getContainer(name).inspect()).State.StartedAt;
}

/** Docker's RFC 3339 time with its fraction padded to nanoseconds (Docker drops trailing zeros), so strings compare as times. */
function comparable(time: string): string {
  return time.replace(/(?:\.(\d+))?Z$/, (_m, frac: string | undefined) => `.${(frac ?? '').padEnd(9, '0')}Z`);
}

async function runContainer(name: string, labels: Record<string, string> = {}): Promise<void> {
  const labelFlags = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
  await dockerCli('run', '-d', '--name', name, '--network', 'host', ...labelFlags, IMAGE, ...SLEEPER);
}

describe('follow-up steps against the real Docker engine', { timeout: 180_000 }, () => {
  const compose = (service: string, n: number): Record<string, string> => ({
    'com.docker.compose.project': PROJECT, 'com.docker.compose.service': service, 'com.docker.compose.container-number': String(n),
  });

  before(async () => {
    await removeContainers(PREFIX);
    const ctx = await mkdtemp(path.join(os.tmpdir(), 'rgfu-image-'));
    try {
      await cp('/bin/busybox', path.join(ctx, 'busybox'));
      await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n');
      await dockerCli('build', '-q', '-t', IMAGE, ctx);
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
    await runContainer('rgfu-a');
    await runContainer('rgfu-b');
    await runContainer('rgfu-worker-1', compose('worker', 1));
    await runContainer('rgfu-worker-2', compose('worker', 2));
    await runContainer('rgfu-web-1', compose('web', 1));
  });

  after(async () => {
    await removeContainers(PREFIX);
    await dockerCli('rmi', IMAGE).catch(() => '');
  });

  it('restart restarts the named containers in the order given', async () => {
    const before = { a: await startedAt('rgfu-a'), b: await startedAt('rgfu-b') };
    const [r] = await run([{ ...base, kind: 'restart', containers: ['rgfu-b', 'rgfu-a'], composeServices: [] }]);
    assert.deepEqual([r!.ok, r!.label, r!.detail], [true, 'restart rgfu-b, rgfu-a', 'restarted rgfu-b, rgfu-a']);
    const now = { a: await startedAt('rgfu-a'), b: await startedAt('rgfu-b') };
    assert.notEqual(now.a, before.a);
    assert.notEqual(now.b, before.b);
    assert.ok(comparable(now.b) < comparable(now.a), `rgfu-b (${now.b}) started again before rgfu-a (${now.a})`);
    assert.equal((await engine.getContainer('rgfu-a').inspect()).State.Running, true);
  });

  it("restart of a Compose service restarts each of its containers and none of the project's others", async () => {
    const before = { w1: await startedAt('rgfu-worker-1'), w2: await startedAt('rgfu-worker-2'), web: await startedAt('rgfu-web-1') };
    const [r] = await run([{ ...base, kind: 'restart', containers: [], composeServices: [{ project: PROJECT, service: 'worker' }] }]);
    assert.deepEqual([r!.ok, r!.detail], [true, 'restarted rgfu-worker-1, rgfu-worker-2']);
    assert.notEqual(await startedAt('rgfu-worker-1'), before.w1);
    assert.notEqual(await startedAt('rgfu-worker-2'), before.w2);
    assert.equal(await startedAt('rgfu-web-1'), before.web);
  });

  it('restart fails naming a missing container, and restarts none of the others', async () => {
    const before = await startedAt('rgfu-a');
    const [r] = await run([{ ...base, kind: 'restart', containers: ['rgfu-a', 'rgfu-missing'], composeServices: [] }]);
    assert.deepEqual([r!.ok, r!.detail], [false, 'no container named rgfu-missing; nothing was restarted']);
    assert.equal(await startedAt('rgfu-a'), before);
  });

  it('restart fails naming a Compose service that has no container', async () => {
    const [r] = await run([{ ...base, kind: 'restart', containers: [], composeServices: [{ project: PROJECT, service: 'beat' }] }]);
    assert.deepEqual([r!.ok, r!.detail], [false, `no container of Compose service ${PROJECT}/beat; nothing was restarted`]);
  });

  it('exec returns the output of the command, run without a shell, and exit code 0', async () => {
    const [r] = await run([{ ...base, kind: 'exec', container: 'rgfu-a', command: ['echo', 'checked', '$HOME;', 'no shell'] }]);
    assert.deepEqual([r!.ok, r!.label, r!.detail], [true, 'exec echo checked $HOME; no shell in rgfu-a', 'exit code 0\nchecked $HOME; no shell']);
  });

  it('exec fails with a non-zero exit code and the output of both streams', async () => {
    const [r] = await run([{ ...base, kind: 'exec', container: 'rgfu-a', command: ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3'] }]);
    assert.equal(r!.ok, false);
    // Docker copies the two streams on their own, so their lines may come in either order.
    const [summary, ...lines] = r!.detail.split('\n');
    assert.equal(summary, 'exit code 3');
    assert.deepEqual(lines.sort(), ['to-stderr', 'to-stdout']);
  });

  it('exec of a command that outlives its timeout fails, saying it may still be running', async () => {
    const started = Date.now();
    const [r] = await run([{ ...base, kind: 'exec', container: 'rgfu-a', command: ['sleep', '30'], timeoutMs: 1_000 }]);
    assert.deepEqual([r!.ok, r!.detail], [false, 'timed out after 1000 ms (the command may still be running in rgfu-a)']);
    assert.ok(Date.now() - started < 3_000);
  });

  it('exec fails naming a missing container', async () => {
    const [r] = await run([{ ...base, kind: 'exec', container: 'rgfu-nowhere', command: ['true'] }]);
    assert.deepEqual([r!.ok, r!.detail], [false, 'no container named rgfu-nowhere']);
  });

  it('runs a whole list in order, records each step as it finishes and skips the rest after a failure', async () => {
    const hits: string[] = [];
    const server = http.createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const warm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/cache/warm`;
    const db11 = await redisDb(11);
    try {
      await fill(db11, 'rgfu:list:', 5);
      const before = await startedAt('rgfu-b');
      const recorded: string[] = [];
      const results = await run([
        { ...base, kind: 'restart', containers: ['rgfu-b'], composeServices: [] },
        { ...base, kind: 'redis_flush', url: `${REDIS}/11`, pattern: 'rgfu:list:*' },
        { ...base, kind: 'exec', container: 'rgfu-b', command: ['false'], continueOnError: true },
        { ...base, kind: 'http', method: 'POST', url: warm },
        { ...base, kind: 'exec', container: 'rgfu-gone', command: ['true'] },
        { ...base, kind: 'http', method: 'POST', url: `${warm}?again` },
      ], async (r) => {
        recorded.push(`${r.index} ${r.ok ? 'ok' : r.skipped ? 'skipped' : 'failed'}: ${r.detail}`);
      });
      assert.deepEqual(recorded, [
        '0 ok: restarted rgfu-b',
        '1 ok: deleted 5 keys matching rgfu:list:* (SCAN + UNLINK)',
        '2 failed: exit code 1',
        '3 ok: answered 204',
        '4 failed: no container named rgfu-gone',
        '5 skipped: skipped: step 5 (exec true in rgfu-gone) failed',
      ]);
      assert.deepEqual(hits, ['POST /internal/cache/warm'], 'the skipped request was not sent');
      assert.notEqual(await startedAt('rgfu-b'), before);
      for (const r of results) assert.ok(r.finishedAt >= r.startedAt);
      assert.ok(results.every((r, i) => i === 0 || r.startedAt >= results[i - 1]!.finishedAt), 'one after the other');
    } finally {
      db11.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
