import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { namesVersion } from './image-ref.js';

describe('namesVersion(): what a pipeline sent the deploy API names the deployed version', () => {
  const commit = '3f9a1c2b7d4e5f60718293a4b5c6d7e8f9012345';
  const image = 'sha256:4e1b2c3d4e5f60718293a4b5c6d7e8f9012345678901234567890abcdef1234';
  for (const [given, ref, id, names] of [
    ['registry/web:1.4.2', 'registry/web:1.4.2', image, true],
    [image, 'registry/web:1.4.2', image, true],
    ['4e1b2c3d4e5f', 'registry/web:1.4.2', image, true],
    ['sha256:4e1b2c3', 'registry/web:1.4.2', image, true],
    ['3f9a1c2', commit.slice(0, 12), commit, true],
    [commit, commit.slice(0, 12), commit, true],
    ['3f9a1c', commit.slice(0, 12), commit, false],
    ['3f9a1c3', commit.slice(0, 12), commit, false],
    ['registry/web:1.4.3', 'registry/web:1.4.2', image, false],
    [undefined, 'registry/web:1.4.2', image, false],
  ] as const) {
    it(`${String(given)} ${names ? 'names' : 'does not name'} ${ref} (${id.slice(0, 14)}…)`, () => {
      assert.equal(namesVersion(given, ref, id), names);
    });
  }
});
