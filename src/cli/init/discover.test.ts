import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import Docker from 'dockerode';
import { DockerUnreachableError } from '../docker-reachable.js';
import { discoverContainers, toDiscovered } from './discover.js';

const ID = 'abcdef012345'.padEnd(64, '6');

/** A `docker inspect` answer with the fields init reads (and some it must not). */
function inspect(over: { Config?: Record<string, unknown>; HostConfig?: Record<string, unknown>; NetworkSettings?: Record<string, unknown>; Name?: string } = {}): unknown {
  return {
    Id: ID, Name: over.Name ?? '/shop-web', Created: '2026-01-01T00:00:00Z',
    State: { Running: true },
    Config: { Image: 'shop:v1', Labels: { a: 'b' }, Env: ['PATH=/bin', 'DB_PASSWORD=hunter2', 'PORT=8000', 'ADMIN_PORT=x', 'METRICS_PORT=9100'], ...over.Config },
    HostConfig: { NetworkMode: 'bridge', ...over.HostConfig },
    NetworkSettings: { Ports: null, ...over.NetworkSettings },
  };
}

describe('rollguard init: reading docker inspect', () => {
  it('keeps the name without its slash, the HEALTHCHECK, TCP ports exposed and published (each once)', () => {
    const c = toDiscovered(inspect({
      Config: { ExposedPorts: { '8000/tcp': {}, '53/udp': {} }, Healthcheck: { Test: ['CMD-SHELL', 'curl -f http://localhost:8000/'], Interval: 1e9 } },
      HostConfig: { PortBindings: { '8000/tcp': [{ HostIp: '0.0.0.0', HostPort: '18000' }, { HostIp: '::', HostPort: '18000' }], '53/udp': [{ HostIp: '', HostPort: '5353' }], '9000/tcp': null } },
      NetworkSettings: { Ports: { '8000/tcp': [{ HostIp: '0.0.0.0', HostPort: '18000' }, { HostIp: '::', HostPort: '18000' }], '53/udp': [{ HostIp: '', HostPort: '5353' }], '9000/tcp': null } },
    }), 'myhost');
    assert.equal(c.name, 'shop-web');
    assert.deepEqual(c.healthcheck, ['CMD-SHELL', 'curl -f http://localhost:8000/']);
    assert.deepEqual(c.exposedPorts, [8000]);
    assert.deepEqual(c.published, [{ containerPort: 8000, hostIp: '0.0.0.0', hostPort: 18000 }]);
    assert.deepEqual(c.randomlyPublished, []);
    assert.equal(c.networkMode, 'bridge');
    assert.equal(c.isRollguard, false);
  });

  it('reads only port-like numeric variables from the environment, never the rest', () => {
    const c = toDiscovered(inspect(), 'myhost');
    assert.deepEqual(c.portEnv, { PORT: 8000, METRICS_PORT: 9100 });
    assert.doesNotMatch(JSON.stringify(c), /hunter2/);
  });

  it('recognises rollguard: a container running `rollguard run`, or the container init runs in (its host name)', () => {
    const daemon = inspect({ Config: { Entrypoint: ['/usr/bin/tini', '--', 'node', '--optimize-for-size', '/app/dist/cli/main.js'], Cmd: ['run', '--policy', '/etc/rollguard/policy.yaml'] } });
    assert.equal(toDiscovered(daemon, 'myhost').isRollguard, true);
    assert.equal(toDiscovered(inspect({ Config: { Cmd: ['rollguard', 'run', '--policy', 'p.yaml'] } }), 'myhost').isRollguard, true);
    assert.equal(toDiscovered(inspect({ Config: { Cmd: ['/app/start'] } }), 'abcdef012345').isRollguard, true, 'its own container');
    assert.equal(toDiscovered(inspect({ Config: { Cmd: ['rollguard-fixture', 'serve'] } }), 'myhost').isRollguard, false);
  });

  it('a host port Docker picked (-P, -p 8080, ports: ["8080"], HostPort 0 or a range) is not a published port: it changes at each recreate', () => {
    // What the engine reports for `docker run -p 8080 -p 127.0.0.1:9000:9000 -p 7000-7010:7000 -P` with EXPOSE 3000.
    const c = toDiscovered(inspect({
      Config: { ExposedPorts: { '3000/tcp': {}, '8080/tcp': {}, '9000/tcp': {}, '7000/tcp': {}, '6000/tcp': {} } },
      HostConfig: {
        PublishAllPorts: true,
        PortBindings: {
          '8080/tcp': [{ HostIp: '', HostPort: '' }],
          '9000/tcp': [{ HostIp: '127.0.0.1', HostPort: '9000' }],
          '7000/tcp': [{ HostIp: '', HostPort: '7000-7010' }],
          '6000/tcp': [{ HostIp: '', HostPort: '0' }],
        },
      },
      // The ports assigned now: each would be a URL that works until the next deploy.
      NetworkSettings: { Ports: {
        '3000/tcp': [{ HostIp: '0.0.0.0', HostPort: '32768' }], '8080/tcp': [{ HostIp: '0.0.0.0', HostPort: '32769' }],
        '9000/tcp': [{ HostIp: '127.0.0.1', HostPort: '9000' }], '7000/tcp': [{ HostIp: '0.0.0.0', HostPort: '7003' }], '6000/tcp': [{ HostIp: '0.0.0.0', HostPort: '32770' }],
      } },
    }), 'myhost');
    assert.deepEqual(c.published, [{ containerPort: 9000, hostIp: '127.0.0.1', hostPort: 9000 }]);
    assert.deepEqual(c.randomlyPublished, [3000, 6000, 7000, 8080]);
  });
});

describe('rollguard init: asking the engine', () => {
  it('an engine that never answers the list of containers is given up on at the deadline, as unreachable', { timeout: 10_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rg-discover-'));
    const socket = path.join(dir, 'docker.sock');
    const held: net.Socket[] = [];
    const server = net.createServer((s) => { held.push(s); s.resume(); });
    server.listen(socket);
    await once(server, 'listening');
    try {
      await assert.rejects(discoverContainers(new Docker({ socketPath: socket }), 200), (err: unknown) => {
        assert.ok(err instanceof DockerUnreachableError);
        assert.match(err.message, /^the Docker engine at unix:\/\/.*docker\.sock did not answer the list of containers within 200 ms \(engine hung\?\); nothing was written/);
        return true;
      });
    } finally {
      for (const s of held) s.destroy();
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
