// How a revert names a bad replica it sets aside: `<name>.rollguard-bad.<deployment>`. Shared by
// the targets whose replicas have names, so an operator finds them the same way everywhere.

const PARKED = /\.rollguard-bad\.(-?\d+)$/;

/** The name a bad replica is set aside under during the revert of `deploymentId`. */
export function parkedName(name: string, deploymentId: number): string {
  return `${deployedName(name)}.rollguard-bad.${deploymentId}`;
}

/** The name a replica had before it was set aside (the name itself when it was not). */
export function deployedName(name: string): string {
  return name.replace(PARKED, '');
}

/** The deployment whose revert set a replica of this name aside, if any. */
export function parkedBy(name: string): number | undefined {
  const m = PARKED.exec(name);
  return m ? Number(m[1]) : undefined;
}
