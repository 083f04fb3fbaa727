import { createClient } from 'redis';
import type { FollowUpStep } from '../../config/policy.js';
import { errorText, remainingMs, type FollowUpKind, type StepContext, type StepOutcome } from './kind.js';

type RedisFlushStep = Extract<FollowUpStep, { kind: 'redis_flush' }>;

/** Keys asked of each SCAN call; each batch found is deleted by one UNLINK. */
const SCAN_COUNT = 1000;
/** At most this long to connect, however long the step may take: a Redis that does not answer by then will not. */
const MAX_CONNECT_MS = 5_000;

/** The database number in a Redis URL's path (`redis://host:6379/11` → 11); 0 without one. */
export function databaseOf(url: string): number {
  try {
    const n = Number(new URL(url).pathname.replace(/^\//, '') || 0);
    return Number.isInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

/**
 * Deletes a pattern's keys by SCAN + UNLINK, batch by batch, or empties the URL's database by
 * FLUSHDB — never KEYS (which blocks the server while it walks every key) or FLUSHALL (which
 * would empty the other databases too). The connection is closed however the step ends.
 */
export const redisFlush: FollowUpKind<RedisFlushStep> = {
  label(step) {
    return `redis_flush ${step.pattern ?? 'FLUSHDB'} on ${step.url}`;
  },

  async run(step, ctx: StepContext): Promise<StepOutcome> {
    const left = remainingMs(ctx.deadline);
    const connectMs = Math.min(MAX_CONNECT_MS, Math.max(1, Math.floor(left / 2)));
    let client: ReturnType<typeof createClient>;
    try {
      client = createClient({
        url: step.url,
        // A refused or lost connection ends the step: a later retry would run past its time.
        socket: { connectTimeout: connectMs, reconnectStrategy: false },
        commandOptions: { timeout: left },
        disableOfflineQueue: true,
      });
    } catch (err) {
      return { ok: false, summary: `invalid Redis URL: ${errorText(err)}` };
    }
    // The client reports socket errors as events as well as by rejecting the command; without a
    // listener an 'error' event would end the process.
    let lastError: unknown;
    client.on('error', (err: unknown) => {
      lastError = err;
    });
    // On timeout every command still waiting is rejected at once and the socket closed.
    const onAbort = (): void => {
      if (client.isOpen) client.destroy();
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      // connectTimeout bounds the TCP connection only; the handshake (HELLO, AUTH, SELECT) that
      // follows is bounded here, so a port that accepts and never answers fails as unreachable.
      let unanswered = false;
      const handshake = setTimeout(() => {
        unanswered = true;
        client.destroy();
      }, connectMs);
      try {
        await client.connect();
      } catch (err) {
        const why = unanswered ? `no answer within ${connectMs} ms` : errorText(lastError ?? err);
        return { ok: false, summary: `cannot connect to Redis: ${why}` };
      } finally {
        clearTimeout(handshake);
      }
      if (step.pattern === undefined) {
        const size = await client.dbSize();
        await client.flushDb();
        return { ok: true, summary: `FLUSHDB emptied database ${databaseOf(step.url)} (${size} keys)` };
      }
      let deleted = 0;
      for await (const keys of client.scanIterator({ MATCH: step.pattern, COUNT: SCAN_COUNT })) {
        if (keys.length) deleted += await client.unlink(keys);
      }
      return { ok: true, summary: `deleted ${deleted} keys matching ${step.pattern} (SCAN + UNLINK)` };
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      // Nothing is left to wait for here: whatever was sent has been answered or has failed.
      if (client.isOpen) client.destroy();
    }
  },
};
