import type { KnownReplica, Replica } from './target.js';

/**
 * Whether a running replica is of the known-good version. Replicas of one version may differ in
 * their own settings (a port each, say), so a replica is compared with the known-good replica of
 * its name; under a name the known-good set does not have, with any of them.
 */
export function ofKnownVersion(r: Pick<Replica, 'name' | 'version'>, known: readonly KnownReplica[]): boolean {
  const same = known.find((k) => k.name === r.name);
  return same ? same.version === r.version : known.some((k) => k.version === r.version);
}

/**
 * Whether a replica starting now changes its service: its version differs from what last ran
 * under its name (`previous`), or — under a new name — its image differs from the service's.
 * A restart, a recreate with the same image and settings, or one more replica of the running
 * image is no change.
 */
export function isChange(r: Pick<Replica, 'image' | 'version'>, previous: string | undefined, serviceImage: string | undefined): boolean {
  if (previous !== undefined) return previous !== r.version;
  return serviceImage !== undefined && r.image !== serviceImage;
}
