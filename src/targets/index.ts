import type Docker from 'dockerode';
import type { Logger } from 'pino';
import type { ServiceMatch } from '../config/policy.js';
import { DockerContainerTarget } from './docker-container/target.js';
import { SwarmServiceTarget } from './swarm-service/target.js';
import { GitTarget } from './git/target.js';
import type { DeployTarget } from './target.js';

/** The clients a target is made with (injected, so tests can pass their own). */
export interface TargetClients {
  docker: Docker;
  log: Logger;
  /** The services the policy watches now, so a target follows changes only while it serves one. */
  watched?: () => readonly ServiceMatch[];
}

interface TargetEntry {
  /** The policy's `match` forms this kind of target serves. */
  matches: readonly ServiceMatch['kind'][];
  create(clients: TargetClients): DeployTarget;
}

/**
 * Deploy target kinds, each implemented in the folder of targets/ named after it. Adding a kind
 * is one folder and one line here; a unit test checks the folders against these keys.
 */
export const TARGETS = {
  'docker-container': { matches: ['container', 'compose', 'labels'], create: (c) => new DockerContainerTarget(c.docker, c.log) },
  'swarm-service': { matches: ['swarm'], create: (c) => new SwarmServiceTarget(c.docker, c.log, c.watched) },
  git: { matches: ['git'], create: (c) => new GitTarget(c.log, c.watched) },
} satisfies Record<string, TargetEntry>;

export type TargetKind = keyof typeof TARGETS;

/** The kind of target that serves a service matched this way. */
export function targetKindFor(match: ServiceMatch): TargetKind {
  const kinds = Object.keys(TARGETS) as TargetKind[];
  const kind = kinds.find((k) => (TARGETS[k].matches as readonly string[]).includes(match.kind));
  if (!kind) throw new Error(`no deploy target serves match kind "${match.kind}"; known: ${kinds.map((k) => `${k} (${TARGETS[k].matches.join(', ')})`).join('; ')}`);
  return kind;
}

/** Makes every kind of target. */
export function createTargets(clients: TargetClients): DeployTarget[] {
  return (Object.keys(TARGETS) as TargetKind[]).map((kind) => createTarget(kind, clients));
}

/** Makes the target of a kind. */
export function createTarget(kind: TargetKind, clients: TargetClients): DeployTarget {
  return TARGETS[kind].create(clients);
}
