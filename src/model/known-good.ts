// A domain type shared by store/ (which persists it), daemon/ (which reverts to it) and policy/
// (whose anti-flapping decisions read it), so it lives here: policy/ may import model/, never store/.

/** The known-good version of a service: what a revert recreates. `spec` is Docker's container inspect. */
export interface KnownGood {
  service: string;
  image_id: string;
  image_ref: string;
  container_name: string;
  spec: unknown;
  deployment_id: number | null;
  since: Date;
}
