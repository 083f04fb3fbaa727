import type { BadImage } from '../model/bad-image.js';

/** Times, images and bad-image marks shared by the anti-flapping tests (policy/ and daemon/). */
export const T0 = new Date('2026-05-01T03:00:00Z');
export const at = (minutes: number): Date => new Date(T0.getTime() + minutes * 60_000);
export const IMG_A = `sha256:${'a'.repeat(64)}`;
export const IMG_B = `sha256:${'b'.repeat(64)}`;
export const mark = (image: string, minutes: number, over: Partial<BadImage> = {}): BadImage => ({
  service: 'web', image_id: image, image_ref: 'app:v2', deployment_id: 7, marked_at: at(minutes), reason: 'error rate above 5%', ...over,
});
export const HOUR = { count: 3, perMs: 3_600_000 };
