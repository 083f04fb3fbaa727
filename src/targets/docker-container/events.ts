import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { z } from 'zod';

const eventSchema = z.looseObject({
  Type: z.string(),
  Action: z.string(),
  Actor: z.looseObject({ ID: z.string() }),
  time: z.number(),
  timeNano: z.number(),
});

/** A container start, as reported by Docker's event stream. */
export interface ContainerStarted {
  containerId: string;
  /** Seconds since the epoch. */
  time: number;
}

/**
 * Follows Docker's event stream for container starts. When the stream breaks (engine restart,
 * socket error) it reconnects with `since` set to the last event seen, so no start is missed;
 * replayed duplicates are dropped. Events are handed over one at a time, in order.
 */
export class DockerEventFollower {
  private lastTime: number;
  /** Events already handed over, keyed `id:timeNano`, for the seconds a reconnect replays. */
  private readonly seen = new Map<string, number>();
  private stopped = false;
  private stream: NodeJS.ReadableStream | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  connected = false;

  constructor(
    private readonly docker: Docker,
    private readonly log: Logger,
    private readonly onStart: (event: ContainerStarted) => Promise<void>,
    startAt: Date = new Date(),
  ) {
    this.lastTime = Math.floor(startAt.getTime() / 1000);
  }

  start(): void {
    void this.connect(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    s?.destroy?.();
    await this.queue;
  }

  /** Resolves when every event received so far has been handled. */
  drained(): Promise<void> {
    return this.queue;
  }

  private async connect(attempt: number): Promise<void> {
    if (this.stopped) return;
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.getEvents({
        since: this.lastTime,
        filters: JSON.stringify({ type: ['container'], event: ['start'] }) as never,
      })) as NodeJS.ReadableStream;
    } catch (err) {
      this.scheduleReconnect(attempt, err);
      return;
    }
    if (this.stopped) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    this.stream = stream;
    this.connected = true;
    if (attempt > 0) this.log.info({ since: this.lastTime }, 'Docker event stream reconnected');
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) this.handleLine(line);
      }
    });
    const broken = (err?: unknown): void => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.connected = false;
      if (!this.stopped) this.scheduleReconnect(1, err ?? new Error('event stream ended'));
    };
    stream.on('end', () => broken());
    stream.on('close', () => broken());
    stream.on('error', (err) => broken(err));
  }

  private scheduleReconnect(attempt: number, err: unknown): void {
    if (this.stopped) return;
    const delay = Math.min(5_000, 250 * 2 ** Math.min(attempt, 5));
    this.log.warn({ err, retryInMs: delay }, 'Docker event stream unavailable');
    this.retryTimer = setTimeout(() => void this.connect(attempt + 1), delay);
  }

  private handleLine(line: string): void {
    let parsed;
    try {
      parsed = eventSchema.safeParse(JSON.parse(line));
    } catch {
      this.log.warn({ line: line.slice(0, 200) }, 'unparseable Docker event');
      return;
    }
    if (!parsed.success) return;
    const ev = parsed.data;
    if (ev.Type !== 'container' || ev.Action !== 'start') return;
    const key = `${ev.Actor.ID}:${ev.timeNano}`;
    if (this.seen.has(key)) return; // replayed by a reconnect's `since`
    this.seen.set(key, ev.time);
    this.lastTime = Math.max(this.lastTime, ev.time);
    for (const [k, t] of this.seen) if (t < this.lastTime - 1) this.seen.delete(k);
    const event = { containerId: ev.Actor.ID, time: ev.time };
    this.queue = this.queue.then(() => this.onStart(event)).catch((err) => this.log.error({ err }, 'handling a container start failed'));
  }
}
