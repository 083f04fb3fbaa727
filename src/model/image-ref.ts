/** Image references as operators write them and Docker reports them. */

/** `registry/app:v1.5.3` → `v1.5.3`; a digest or bare ID → its first 12 hex digits. */
export function versionOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(at + 1).replace(/^sha256:/, '').slice(0, 12);
  if (/^sha256:[0-9a-f]+$/.test(ref)) return ref.slice(7, 19);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(colon + 1) : 'latest';
}

/** `sha256:abcdef…` → `abcdef012345` */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/**
 * Whether `given` — what a pipeline sent the deploy API — names a version deployed as `ref` with
 * the ID `id`: the reference itself, the full ID, or a prefix of the ID of at least 7 hex digits
 * (`git rev-parse --short HEAD`, a short image ID), with or without `sha256:`.
 */
export function namesVersion(given: string | undefined, ref: string, id: string): boolean {
  if (!given) return false;
  if (given === ref || given === id) return true;
  const hex = given.replace(/^sha256:/, '');
  return /^[0-9a-f]{7,64}$/.test(hex) && id.replace(/^sha256:/, '').startsWith(hex);
}
