/** Docker's own words for a failed Engine API call (its JSON `message`), else the error's. */
export function dockerMessage(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string };
  return e?.json?.message ?? e?.message ?? String(err);
}
