/**
 * The raw document as the cross-key checks read it, before zod has typed it: a problem is the
 * path of keys it is about and what is wrong there (the loader adds the file and line).
 */
export type Problem = { keys: (string | number)[]; message: string };

/** A YAML mapping, as opposed to a list, a scalar or nothing. */
export const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
