import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Thrown when the API token setting cannot be used. */
export class TokenConfigError extends Error {}

/** The bearer token for state-changing API calls: ROLLGUARD_API_TOKEN, or the file named by ROLLGUARD_API_TOKEN_FILE. */
export function apiToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.ROLLGUARD_API_TOKEN && env.ROLLGUARD_API_TOKEN_FILE) throw new TokenConfigError('set only one of ROLLGUARD_API_TOKEN and ROLLGUARD_API_TOKEN_FILE');
  if (env.ROLLGUARD_API_TOKEN_FILE) {
    try {
      const token = readFileSync(env.ROLLGUARD_API_TOKEN_FILE, 'utf8').trim();
      if (!token) throw new TokenConfigError(`ROLLGUARD_API_TOKEN_FILE ${env.ROLLGUARD_API_TOKEN_FILE} is empty`);
      return token;
    } catch (err) {
      if (err instanceof TokenConfigError) throw err;
      throw new TokenConfigError(`cannot read ROLLGUARD_API_TOKEN_FILE ${env.ROLLGUARD_API_TOKEN_FILE}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return env.ROLLGUARD_API_TOKEN || undefined;
}

/** Compares an `Authorization: Bearer …` header with the token in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = createHash('sha256').update(m[1] as string).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}
