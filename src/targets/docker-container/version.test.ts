import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { containerInspectSchema, type ContainerInspect } from './inspect.js';
import { changedSettings, containerRole, versionKey, type ContainerRole } from './version.js';

const IMAGE = `sha256:${'1'.repeat(64)}`;
const OTHER_IMAGE = `sha256:${'2'.repeat(64)}`;
/** Docker's name for an anonymous volume: 64 hex digits. */
const ANON_A = 'a'.repeat(64);
const ANON_B = 'b'.repeat(64);

const COMPOSE_LABELS = {
  'com.docker.compose.project': 'shop',
  'com.docker.compose.service': 'web',
  'com.docker.compose.container-number': '1',
  'com.docker.compose.config-hash': 'c0ffee',
  'traefik.enable': 'true',
};

interface Parts {
  image?: string;
  id?: string;
  name?: string;
  /** Merged over the base Config; `Labels` replaces the base labels. */
  config?: Record<string, unknown>;
  /** Merged over the base HostConfig. */
  host?: Record<string, unknown>;
}

/** Replica 1 of the Compose service shop/web, as `docker inspect` reports it, with the parts a case changes. */
function container({ image = IMAGE, id = 'c'.repeat(64), name = '/shop-web-1', config = {}, host = {} }: Parts = {}): ContainerInspect {
  return containerInspectSchema.parse({
    Id: id,
    Name: name,
    Image: image,
    Created: '2026-11-26T12:00:00Z',
    State: { Running: true, StartedAt: '2026-11-26T12:00:01Z' },
    Config: {
      Image: 'shop/web:1.4',
      Hostname: id.slice(0, 12),
      Env: ['DATABASE_URL=postgres://db/shop', 'LOG_LEVEL=info', 'PATH=/usr/local/bin:/usr/bin'],
      Cmd: ['gunicorn', 'shop.wsgi'],
      Entrypoint: ['/docker-entrypoint.sh'],
      User: 'app',
      WorkingDir: '/app',
      Labels: COMPOSE_LABELS,
      Volumes: { '/data': {} },
      ExposedPorts: { '8000/tcp': {} },
      ...config,
    },
    HostConfig: {
      Binds: ['/srv/shop/media:/app/media:ro'],
      PortBindings: { '8000/tcp': [{ HostIp: '', HostPort: '8000' }] },
      Mounts: [],
      ...host,
    },
    NetworkSettings: { Networks: { shop_default: {} } },
  });
}

const base = container();

describe('versionKey', () => {
  const sameVersion: [what: string, other: ContainerInspect][] = [
    ['another name, host name and container ID (replica 2 of the service)', container({ id: 'd'.repeat(64), name: '/shop-web-2' })],
    ['another Compose container number', container({ config: { Labels: { ...COMPOSE_LABELS, 'com.docker.compose.container-number': '2' } } })],
    ['another Compose config hash', container({ config: { Labels: { ...COMPOSE_LABELS, 'com.docker.compose.config-hash': 'beef' } } })],
    ['the Compose label naming the container it replaced', container({ config: { Labels: { ...COMPOSE_LABELS, 'com.docker.compose.replace': 'c'.repeat(64) } } })],
    ['a Swarm task ID label', container({ config: { Labels: { ...COMPOSE_LABELS, 'com.docker.swarm.task.id': 'x1y2z3' } } })],
    ['the rollguard.migrations label', container({ config: { Labels: { ...COMPOSE_LABELS, 'rollguard.migrations': 'applied' } } })],
    ['user labels written in another order', container({ config: { Labels: Object.fromEntries(Object.entries(COMPOSE_LABELS).reverse()) } })],
    ['an anonymous volume handed back by name in Binds', container({ host: { Binds: ['/srv/shop/media:/app/media:ro', `${ANON_A}:/data:rw`] } })],
    ['another anonymous volume handed back by name in Binds', container({ host: { Binds: [`${ANON_B}:/data`, '/srv/shop/media:/app/media:ro'] } })],
    ['an anonymous volume in HostConfig.Mounts by its 64-hex name', container({ host: { Mounts: [{ Type: 'volume', Source: ANON_A, Target: '/data' }] } })],
    ['an anonymous volume in HostConfig.Mounts without a source', container({ host: { Mounts: [{ Type: 'volume', Source: '', Target: '/data' }] } })],
  ];
  for (const [what, other] of sameVersion) {
    it(`is the same for ${what}`, () => {
      assert.equal(versionKey(other), versionKey(base));
    });
  }

  const otherVersion: [what: string, other: ContainerInspect][] = [
    ['another Env entry', container({ config: { Env: ['DATABASE_URL=postgres://db/shop', 'LOG_LEVEL=debug', 'PATH=/usr/local/bin:/usr/bin'] } })],
    ['an added Env entry', container({ config: { Env: ['DATABASE_URL=postgres://db/shop', 'LOG_LEVEL=info', 'PATH=/usr/local/bin:/usr/bin', 'FEATURE_X=1'] } })],
    ['another Cmd', container({ config: { Cmd: ['gunicorn', 'shop.wsgi', '--workers', '4'] } })],
    ['another Entrypoint', container({ config: { Entrypoint: ['/usr/bin/tini', '--'] } })],
    ['another User', container({ config: { User: 'root' } })],
    ['another WorkingDir', container({ config: { WorkingDir: '/srv' } })],
    ['another user label', container({ config: { Labels: { ...COMPOSE_LABELS, 'traefik.enable': 'false' } } })],
    ['an added user label', container({ config: { Labels: { ...COMPOSE_LABELS, 'team': 'payments' } } })],
    ['an added bind mount', container({ host: { Binds: ['/srv/shop/media:/app/media:ro', '/srv/a:/data'] } })],
    ['an added named volume', container({ host: { Binds: ['/srv/shop/media:/app/media:ro', 'dbdata:/var/lib/db'] } })],
    ['a named volume in HostConfig.Mounts', container({ host: { Mounts: [{ Type: 'volume', Source: 'dbdata', Target: '/var/lib/db' }] } })],
    ['another host port', container({ host: { PortBindings: { '8000/tcp': [{ HostIp: '', HostPort: '8080' }] } } })],
    ['an added port binding', container({ host: { PortBindings: { '8000/tcp': [{ HostIp: '', HostPort: '8000' }], '9000/tcp': [{ HostIp: '127.0.0.1', HostPort: '9000' }] } } })],
    ['another image ID with identical settings', container({ image: OTHER_IMAGE })],
  ];
  for (const [what, other] of otherVersion) {
    it(`differs for ${what}`, () => {
      assert.notEqual(versionKey(other), versionKey(base));
    });
  }

  it('starts with the image ID', () => {
    assert.match(versionKey(base), new RegExp(`^${IMAGE}\\+[0-9a-f]{12}$`));
  });

  it('is the same for Env entries in another order', () => {
    assert.equal(versionKey(container({ config: { Env: ['PATH=/usr/local/bin:/usr/bin', 'LOG_LEVEL=info', 'DATABASE_URL=postgres://db/shop'] } })), versionKey(base));
  });
});

describe('changedSettings', () => {
  const cases: [what: string, to: ContainerInspect, changed: string[]][] = [
    ['nothing when only the name, ID and self-set labels differ', container({ id: 'd'.repeat(64), name: '/shop-web-2', config: { Labels: { ...COMPOSE_LABELS, 'com.docker.compose.container-number': '2', 'rollguard.migrations': 'applied' } } }), []],
    ['nothing when only the image differs (the image is not a setting)', container({ image: OTHER_IMAGE }), []],
    ['env for another Env entry', container({ config: { Env: ['DATABASE_URL=postgres://db/shop2', 'LOG_LEVEL=info', 'PATH=/usr/local/bin:/usr/bin'] } }), ['env']],
    ['cmd and labels for another Cmd and a user label', container({ config: { Cmd: ['celery', 'worker'], Labels: { ...COMPOSE_LABELS, 'traefik.enable': 'false' } } }), ['cmd', 'labels']],
    ['entrypoint, user and workingDir', container({ config: { Entrypoint: null, User: '1000:1000', WorkingDir: '/' } }), ['entrypoint', 'user', 'workingDir']],
    ['binds for an added named volume', container({ host: { Binds: ['/srv/shop/media:/app/media:ro', 'dbdata:/var/lib/db'] } }), ['binds']],
    ['mounts for an added bind in HostConfig.Mounts', container({ host: { Mounts: [{ Type: 'bind', Source: '/srv/a', Target: '/data', ReadOnly: true }] } }), ['mounts']],
    ['portBindings for another host port', container({ host: { PortBindings: { '8000/tcp': [{ HostIp: '', HostPort: '8080' }] } } }), ['portBindings']],
    ['volumes and exposedPorts for another image layout', container({ config: { Volumes: { '/cache': {} }, ExposedPorts: { '8000/tcp': {}, '9000/tcp': {} } } }), ['volumes', 'exposedPorts']],
  ];
  for (const [what, to, changed] of cases) {
    it(`names ${what}`, () => {
      assert.deepEqual(changedSettings(base, to), changed);
    });
  }
});

describe('containerRole', () => {
  const cases: [what: string, labels: Record<string, string>, role: ContainerRole][] = [
    ['a container without labels is a service container', {}, { kind: 'service' }],
    ['a Compose service container is a service container', COMPOSE_LABELS, { kind: 'service' }],
    ['compose run (oneoff "True") is a one-off', { ...COMPOSE_LABELS, 'com.docker.compose.oneoff': 'True' }, { kind: 'one-off' }],
    ['oneoff "true" in lower case is a one-off', { ...COMPOSE_LABELS, 'com.docker.compose.oneoff': 'true' }, { kind: 'one-off' }],
    ['oneoff "False" is a service container', { ...COMPOSE_LABELS, 'com.docker.compose.oneoff': 'False' }, { kind: 'service' }],
    [
      'a Swarm task names its service',
      { 'com.docker.swarm.service.name': 'shop_web', 'com.docker.swarm.task.id': 'x1y2z3', 'com.docker.swarm.task.name': 'shop_web.1.x1y2z3' },
      { kind: 'swarm-task', service: 'shop_web' },
    ],
    ['the Swarm service label alone makes a Swarm task', { 'com.docker.swarm.service.name': 'shop_web' }, { kind: 'swarm-task', service: 'shop_web' }],
    ['the Swarm task ID alone makes a Swarm task of an unknown service', { 'com.docker.swarm.task.id': 'x1y2z3' }, { kind: 'swarm-task', service: 'unknown' }],
  ];
  for (const [what, labels, role] of cases) {
    it(what, () => {
      assert.deepEqual(containerRole(labels), role);
    });
  }
});
