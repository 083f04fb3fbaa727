import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { taskTemplateSchema, type TaskTemplate } from './inspect.js';
import { changedTemplateSettings, imageRef, templateVersion } from './version.js';

const DIGEST = `sha256:${'ab12'.repeat(16)}`;

/** The task template of shop/web:1.4 as `docker service inspect` reports it, with the parts a case changes. */
function template(parts: { container?: Record<string, unknown>; resources?: unknown; rest?: Record<string, unknown> } = {}): TaskTemplate {
  return taskTemplateSchema.parse({
    ContainerSpec: {
      Image: `shop/web:1.4@${DIGEST}`,
      Env: ['MODE=live', 'PORT=8080'],
      Args: ['serve'],
      Labels: { tier: 'front' },
      StopGracePeriod: 10_000_000_000,
      Isolation: 'default',
      ...parts.container,
    },
    ...(parts.resources === undefined ? {} : { Resources: parts.resources }),
    RestartPolicy: { Condition: 'any', MaxAttempts: 0 },
    Placement: {},
    ForceUpdate: 0,
    Runtime: 'container',
    ...parts.rest,
  });
}

/** The same JSON with every object's keys in reverse order. */
function reversedKeys<T>(value: T): T {
  if (Array.isArray(value)) return value.map(reversedKeys) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversedKeys(v)])) as T;
  return value;
}

describe('templateVersion', () => {
  it('is the same for the same template whatever the order of its keys', () => {
    const t = template({ resources: { Limits: { MemoryBytes: 268_435_456, NanoCPUs: 500_000_000 }, Reservations: {} } });
    assert.notDeepEqual(Object.keys(reversedKeys(t)), Object.keys(t));
    assert.equal(templateVersion(reversedKeys(t)), templateVersion(t));
  });

  it('ignores ForceUpdate: a forced update recreates the tasks of the same version', () => {
    assert.equal(templateVersion(template({ rest: { ForceUpdate: 7 } })), templateVersion(template()));
  });

  it('ignores the settings outside the container and its resources (restart policy, placement)', () => {
    const moved = template({ rest: { RestartPolicy: { Condition: 'on-failure', MaxAttempts: 3 }, Placement: { Constraints: ['node.role==worker'] } } });
    assert.equal(templateVersion(moved), templateVersion(template()));
  });

  const changes: [what: string, changed: TaskTemplate][] = [
    ['another image', template({ container: { Image: `shop/web:1.5@${DIGEST}` } })],
    ['the same tag at another digest', template({ container: { Image: `shop/web:1.4@sha256:${'cd34'.repeat(16)}` } })],
    ['a changed environment variable', template({ container: { Env: ['MODE=dark', 'PORT=8080'] } })],
    ['the environment in another order', template({ container: { Env: ['PORT=8080', 'MODE=live'] } })],
    ['another command', template({ container: { Args: ['serve', '--debug'] } })],
    ['a mount', template({ container: { Mounts: [{ Type: 'volume', Source: 'data', Target: '/data' }] } })],
    ['a memory limit', template({ resources: { Limits: { MemoryBytes: 268_435_456 } } })],
  ];
  for (const [what, changed] of changes) {
    it(`changes with ${what}`, () => {
      assert.notEqual(templateVersion(changed), templateVersion(template()));
    });
  }

  it('is 24 hex digits', () => {
    assert.match(templateVersion(template()), /^[0-9a-f]{24}$/);
  });
});

describe('imageRef', () => {
  const cases: [image: string, ref: string][] = [
    [`shop/web:1.4@${DIGEST}`, 'shop/web:1.4'],
    [`registry.local:5000/shop/web:1.4@${DIGEST}`, 'registry.local:5000/shop/web:1.4'],
    [`shop/web@${DIGEST}`, 'shop/web'],
    ['shop/web:1.4', 'shop/web:1.4'],
    ['registry.local:5000/shop/web', 'registry.local:5000/shop/web'],
  ];
  for (const [image, ref] of cases) {
    it(`names ${image.replace(DIGEST, 'sha256:…')} as ${ref}`, () => {
      assert.equal(imageRef(image), ref);
    });
  }
});

describe('changedTemplateSettings', () => {
  it('names nothing for the same template written in another key order, or only forced again', () => {
    assert.deepEqual(changedTemplateSettings(template(), reversedKeys(template({ rest: { ForceUpdate: 3 } }))), []);
  });

  it('names each changed container setting, sorted', () => {
    const to = template({ container: { Image: 'shop/web:1.5', Env: ['MODE=dark', 'PORT=8080'], Args: ['serve', '--debug'] } });
    assert.deepEqual(changedTemplateSettings(template(), to), ['ContainerSpec.Args', 'ContainerSpec.Env', 'ContainerSpec.Image']);
  });

  it('names a setting added or removed', () => {
    const added = template({ container: { User: 'nobody' } });
    assert.deepEqual(changedTemplateSettings(template(), added), ['ContainerSpec.User']);
    assert.deepEqual(changedTemplateSettings(added, template()), ['ContainerSpec.User']);
  });

  it('names changed resources as Resources, after the container settings', () => {
    const to = template({ container: { Env: ['MODE=live'] }, resources: { Limits: { NanoCPUs: 1_000_000_000 } } });
    assert.deepEqual(changedTemplateSettings(template(), to), ['ContainerSpec.Env', 'Resources']);
  });

  it('does not name settings outside the container and its resources', () => {
    assert.deepEqual(changedTemplateSettings(template(), template({ rest: { Placement: { Constraints: ['node.role==worker'] } } })), []);
  });
});
