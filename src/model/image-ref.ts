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
