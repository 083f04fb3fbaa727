import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toDiscovered } from './discover.js';

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
      NetworkSettings: { Ports: { '8000/tcp': [{ HostIp: '0.0.0.0', HostPort: '18000' }, { HostIp: '::', HostPort: '18000' }], '53/udp': [{ HostIp: '', HostPort: '5353' }], '9000/tcp': null } },
    }), 'myhost');
    assert.equal(c.name, 'shop-web');
    assert.deepEqual(c.healthcheck, ['CMD-SHELL', 'curl -f http://localhost:8000/']);
    assert.deepEqual(c.exposedPorts, [8000]);
    assert.deepEqual(c.published, [{ containerPort: 8000, hostIp: '0.0.0.0', hostPort: 18000 }]);
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
});
