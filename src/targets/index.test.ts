import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type Docker from 'dockerode';
import pino from 'pino';
import type { ServiceMatch } from '../config/policy.js';
import { createTarget, TARGETS, targetKindFor, type TargetKind } from './index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Folders of targets/ that are not kinds of target: the in-memory test double. */
const NOT_KINDS = new Set(['fake']);

describe('the deploy target registry', () => {
  it('has one entry per folder of targets/, and a folder for every entry', () => {
    const folders = readdirSync(here, { withFileTypes: true }).filter((d) => d.isDirectory() && !NOT_KINDS.has(d.name)).map((d) => d.name).sort();
    assert.deepEqual(Object.keys(TARGETS).sort(), folders);
  });

  it('each entry makes a target of its own kind', () => {
    for (const kind of Object.keys(TARGETS) as TargetKind[]) {
      const target = createTarget(kind, { docker: {} as Docker, log: pino({ level: 'silent' }) });
      assert.equal(target.kind, kind);
      assert.deepEqual([...target.matches], [...TARGETS[kind].matches], `${kind} serves the match kinds its registry line names`);
    }
  });

  it('every form of match is served by exactly one kind', () => {
    const matches: ServiceMatch[] = [
      { kind: 'container', name: 'web' },
      { kind: 'compose', project: 'shop', service: 'web' },
      { kind: 'labels', labels: { app: 'web' } },
      { kind: 'swarm', service: 'web' },
      { kind: 'swarm', service: 'shop_web', stack: 'shop' },
      { kind: 'git', path: '/srv/app', branch: 'main', pollMs: 1000, mode: 'revert' },
    ];
    for (const match of matches) {
      const serving = (Object.keys(TARGETS) as TargetKind[]).filter((k) => (TARGETS[k].matches as readonly string[]).includes(match.kind));
      assert.equal(serving.length, 1, `${match.kind} is served by ${serving.join(', ') || 'nothing'}`);
      assert.equal(targetKindFor(match), serving[0]);
    }
  });

  it('a match kind no target serves is an error naming the kinds there are', () => {
    assert.throws(() => targetKindFor({ kind: 'kubernetes' } as unknown as ServiceMatch), /no deploy target serves match kind "kubernetes"; known: docker-container \(container, compose, labels\); swarm-service \(swarm\); git \(git\)/);
  });
});
