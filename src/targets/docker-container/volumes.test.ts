import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { containerInspectSchema, type ContainerInspect } from './inspect.js';
import { carryVolumes, volumeNames, type CarriedVolumes } from './volumes.js';

/** Docker's names for anonymous volumes: 64 hex digits. */
const OWN = 'a'.repeat(64);
const THEIRS = 'b'.repeat(64);
const CACHE = 'c'.repeat(64);

/** A volume as the runtime `Mounts` of `docker inspect` lists it. */
function volume(name: string, destination: string, rw = true): Record<string, unknown> {
  return { Type: 'volume', Name: name, Source: `/var/lib/docker/volumes/${name}/_data`, Destination: destination, Driver: 'local', Mode: rw ? '' : 'ro', RW: rw, Propagation: '' };
}

/** A bind mount as the runtime `Mounts` of `docker inspect` lists it. */
function bind(source: string, destination: string): Record<string, unknown> {
  return { Type: 'bind', Source: source, Destination: destination, Mode: '', RW: true, Propagation: 'rprivate' };
}

/** An inspected container with these runtime mounts and these HostConfig.Binds / HostConfig.Mounts. */
function container(mounts: Record<string, unknown>[], host: { Binds?: string[]; Mounts?: Record<string, unknown>[] } = {}): ContainerInspect {
  return containerInspectSchema.parse({
    Id: 'f'.repeat(64),
    Name: '/shop-db-1',
    Image: `sha256:${'1'.repeat(64)}`,
    Created: '2026-11-26T12:00:00Z',
    State: { Running: false, StartedAt: '2026-11-26T12:00:01Z' },
    Config: { Image: 'postgres:16', Volumes: { '/data': {} } },
    HostConfig: host,
    NetworkSettings: { Networks: {} },
    Mounts: mounts,
  });
}

/** A volumeExists that knows exactly these volumes. */
function existing(...names: string[]): (name: string) => boolean {
  const set = new Set(names);
  return (name) => set.has(name);
}

describe('carryVolumes', () => {
  const cases: [what: string, target: ContainerInspect, replaced: ContainerInspect | undefined, exists: string[], carried: Omit<CarriedVolumes, 'mountSources'>][] = [
    [
      'the known-good container\'s own anonymous volume, still there, is bound back',
      container([volume(OWN, '/data')]),
      undefined,
      [OWN],
      { binds: [`${OWN}:/data`], notes: ['volume aaaaaaaaaaaa at /data given back'] },
    ],
    [
      'its own volume wins over the replaced container\'s, which is kept',
      container([volume(OWN, '/data')]),
      container([volume(THEIRS, '/data')]),
      [OWN, THEIRS],
      { binds: [`${OWN}:/data`], notes: ['volume aaaaaaaaaaaa at /data given back; the replaced container\'s volume bbbbbbbbbbbb there is kept'] },
    ],
    [
      'a replaced container that mounted the very same volume needs no note about another one',
      container([volume(OWN, '/data')]),
      container([volume(OWN, '/data')]),
      [OWN],
      { binds: [`${OWN}:/data`], notes: ['volume aaaaaaaaaaaa at /data given back'] },
    ],
    [
      'its own volume gone, the replaced container\'s volume at the same place is bound instead',
      container([volume(OWN, '/data')]),
      container([volume(THEIRS, '/data')]),
      [THEIRS],
      { binds: [`${THEIRS}:/data`], notes: ['volume aaaaaaaaaaaa at /data is gone; the replaced container\'s volume bbbbbbbbbbbb is used'] },
    ],
    [
      'both gone, nothing is bound and a new empty volume is announced',
      container([volume(OWN, '/data')]),
      container([volume(THEIRS, '/data')]),
      [],
      { binds: [], notes: ['volume aaaaaaaaaaaa at /data is gone; a new, empty one is created'] },
    ],
    [
      'its own volume gone and no replaced container, a new empty volume is announced',
      container([volume(OWN, '/data')]),
      undefined,
      [],
      { binds: [], notes: ['volume aaaaaaaaaaaa at /data is gone; a new, empty one is created'] },
    ],
    [
      'the replaced container\'s volume at another destination is not used',
      container([volume(OWN, '/data')]),
      container([volume(THEIRS, '/cache')]),
      [THEIRS],
      { binds: [], notes: ['volume aaaaaaaaaaaa at /data is gone; a new, empty one is created'] },
    ],
    [
      'a read-only volume is bound back read-only',
      container([volume(OWN, '/data', false)]),
      undefined,
      [OWN],
      { binds: [`${OWN}:/data:ro`], notes: ['volume aaaaaaaaaaaa at /data given back'] },
    ],
    [
      'the replaced container\'s volume is bound read-only where the known-good one was read-only',
      container([volume(OWN, '/data', false)]),
      container([volume(THEIRS, '/data')]),
      [THEIRS],
      { binds: [`${THEIRS}:/data:ro`], notes: ['volume aaaaaaaaaaaa at /data is gone; the replaced container\'s volume bbbbbbbbbbbb is used'] },
    ],
    [
      'an anonymous volume Compose passes on by name in Binds is not added again',
      container([volume(OWN, '/data')], { Binds: [`${OWN}:/data:rw`] }),
      container([volume(THEIRS, '/data')]),
      [OWN, THEIRS],
      { binds: [], notes: [] },
    ],
    [
      'an anonymous volume Compose passes on by name in HostConfig.Mounts is not added again',
      container([volume(OWN, '/data')], { Mounts: [{ Type: 'volume', Source: OWN, Target: '/data' }] }),
      undefined,
      [OWN],
      { binds: [], notes: [] },
    ],
    [
      'a destination a named volume in Binds already mounts is not added again',
      container([volume(OWN, '/data')], { Binds: ['pgdata:/data'] }),
      undefined,
      [OWN],
      { binds: [], notes: [] },
    ],
    [
      'a named volume is never added',
      container([volume('pgdata', '/var/lib/postgresql/data')]),
      container([volume('pgdata', '/var/lib/postgresql/data')]),
      ['pgdata'],
      { binds: [], notes: [] },
    ],
    [
      'a bind mount is never added',
      container([bind('/srv/shop/conf', '/etc/shop')]),
      container([bind('/srv/shop/conf', '/etc/shop')]),
      [],
      { binds: [], notes: [] },
    ],
    [
      'each anonymous volume is decided on its own, in mount order',
      container([volume(OWN, '/data'), bind('/srv/shop/conf', '/etc/shop'), volume(CACHE, '/cache'), volume('pgdata', '/var/lib/db')]),
      container([volume(THEIRS, '/data')]),
      [THEIRS, 'pgdata'],
      {
        binds: [`${THEIRS}:/data`],
        notes: [
          'volume aaaaaaaaaaaa at /data is gone; the replaced container\'s volume bbbbbbbbbbbb is used',
          'volume cccccccccccc at /cache is gone; a new, empty one is created',
        ],
      },
    ],
    [
      'a container without runtime mounts carries nothing',
      container([]),
      container([volume(THEIRS, '/data')]),
      [THEIRS],
      { binds: [], notes: [] },
    ],
  ];
  for (const [what, target, replaced, exists, carried] of cases) {
    it(what, () => {
      assert.deepEqual(carryVolumes(target, replaced, existing(...exists)), { ...carried, mountSources: {} });
    });
  }

  it('never binds a destination HostConfig.Mounts already mounts (Docker rejects a duplicate mount point)', () => {
    const target = container([volume(OWN, '/data')], { Mounts: [{ Type: 'volume', Source: '', Target: '/data' }] });
    const { binds } = carryVolumes(target, undefined, existing(OWN));
    assert.deepEqual(binds.filter((b) => b.split(':')[1] === '/data'), []);
  });

  it('names the volume of an anonymous HostConfig.Mounts entry instead (--mount type=volume,target=/data)', () => {
    const target = container([volume(OWN, '/data')], { Mounts: [{ Type: 'volume', Source: '', Target: '/data' }] });
    assert.deepEqual(carryVolumes(target, undefined, existing(OWN)).mountSources, { '/data': OWN });
  });

  it('leaves a HostConfig.Mounts entry with its own Source alone', () => {
    const target = container([volume(OWN, '/data')], { Mounts: [{ Type: 'volume', Source: 'pgdata', Target: '/data' }] });
    const carried = carryVolumes(target, undefined, existing(OWN));
    assert.deepEqual([carried.binds, carried.mountSources], [[], {}]);
  });
});

describe('volumeNames', () => {
  const cases: [what: string, specs: (ContainerInspect | undefined)[], names: string[]][] = [
    ['lists anonymous and named volumes by name', [container([volume(OWN, '/data'), volume('pgdata', '/var/lib/db')])], [OWN, 'pgdata']],
    ['ignores bind mounts', [container([bind('/srv/shop/conf', '/etc/shop'), volume(OWN, '/data')])], [OWN]],
    [
      'lists a volume both containers mount once',
      [container([volume(OWN, '/data'), volume('pgdata', '/var/lib/db')]), container([volume(OWN, '/data'), volume(THEIRS, '/cache')])],
      [OWN, 'pgdata', THEIRS],
    ],
    ['skips a missing replaced container', [container([volume(OWN, '/data')]), undefined], [OWN]],
    ['is empty without volumes', [container([]), undefined], []],
  ];
  for (const [what, specs, names] of cases) {
    it(what, () => {
      assert.deepEqual(volumeNames(...specs), names);
    });
  }
});
