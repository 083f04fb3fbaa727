import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FollowUpStep } from '../../config/policy.js';
import { FOLLOW_UP_STEPS } from './index.js';
import type { FollowUpKind } from './kind.js';

/** Files of this folder that are not a kind of step. */
const SHARED = ['index.ts', 'kind.ts', 'run.ts', 'detail.ts'];

const base = { timeoutMs: 30_000, continueOnError: false };

function label(step: FollowUpStep): string {
  return (FOLLOW_UP_STEPS[step.kind] as FollowUpKind).label(step);
}

describe('FOLLOW_UP_STEPS', () => {
  it('has one file per kind of step, named after the kind', async () => {
    const dir = path.dirname(fileURLToPath(import.meta.url));
    const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !SHARED.includes(f));
    assert.deepEqual(files.map((f) => f.replace(/\.ts$/, '').replace(/-/g, '_')).sort(), Object.keys(FOLLOW_UP_STEPS).sort());
  });

  it('labels each kind of step in a few words', () => {
    assert.equal(label({ ...base, kind: 'restart', containers: ['himalytix-celery', 'himalytix-celery-beat'], composeServices: [] }), 'restart himalytix-celery, himalytix-celery-beat');
    assert.equal(label({ ...base, kind: 'restart', containers: ['beat'], composeServices: [{ project: 'himalytix', service: 'worker' }] }), 'restart beat, compose himalytix/worker');
    assert.equal(label({ ...base, kind: 'redis_flush', url: 'redis://127.0.0.1:6379/0', pattern: 'cache:*' }), 'redis_flush cache:* on redis://127.0.0.1:6379/0');
    assert.equal(label({ ...base, kind: 'redis_flush', url: 'redis://127.0.0.1:6379/2' }), 'redis_flush FLUSHDB on redis://127.0.0.1:6379/2');
    assert.equal(label({ ...base, kind: 'exec', container: 'himalytix-web', command: ['python', 'manage.py', 'check', '--deploy'] }), 'exec python manage.py check --deploy in himalytix-web');
    assert.equal(label({ ...base, kind: 'http', method: 'POST', url: 'http://127.0.0.1:8000/internal/cache/warm' }), 'http POST http://127.0.0.1:8000/internal/cache/warm');
  });
});
