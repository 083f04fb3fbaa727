// A domain type shared by store/ (which persists it), daemon/ (which reverts to it) and policy/
// (whose anti-flapping decisions read it), so it lives here: policy/ may import model/, never store/.

/**
 * The known-good version of a service: what a revert recreates. `spec` is the target's own
 * snapshot of it (for Docker containers, the `docker inspect` of each replica), opaque elsewhere.
 */
export interface KnownGood {
  service: string;
  /** The kind of deploy target that made `spec`; only that kind can put it back. */
  target: string;
  image_id: string;
  image_ref: string;
  container_name: string;
  spec: unknown;
  deployment_id: number | null;
  since: Date;
}
