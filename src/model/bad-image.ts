// A domain type shared by store/ (which persists it), daemon/ (FlapGuard keeps it in memory) and
// policy/ (whose anti-flapping decisions read it), so it lives here: policy/ may import model/,
// never store/.

/** An image rollguard reverted away from, for one service (table `bad_images`, migration 5). */
export interface BadImage {
  service: string;
  image_id: string;
  image_ref: string;
  /** The deployment that was reverted. */
  deployment_id: number | null;
  /** When the revert away from it was decided. */
  marked_at: Date;
  reason: string;
}
