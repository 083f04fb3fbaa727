import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { dockerMessage, listTasks, type SwarmTask } from './inspect.js';

/** How often the manager is asked for the swarm's tasks. */
const POLL_MS = 1_000;

/**
 * Follows a swarm's tasks from a manager node: each task that reaches `running` is handed over
 * once, in the order it started, one at a time. Swarm's own events name services, not tasks, and
 * a task on another node starts no event here, so the manager's task list is read every second
 * — level-triggered: a restart of the engine or of rollguard misses nothing that still runs.
 * Tasks already running when following begins are not handed over (the daemon's reconcile
 * adopts them). Only the tasks of the watched services are asked for.
 */
export class SwarmTaskFollower {
  private readonly seen = new Set<string>();
  private primed = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private queue: Promise<void> = Promise.resolve();
  private failing = false;
  connected = true;

  constructor(
    private readonly docker: Docker,
    private readonly log: Logger,
    private readonly onRunning: (task: SwarmTask) => Promise<void>,
    /** The Swarm services the policy watches now, by name; none: nothing is asked. */
    private readonly services: () => readonly string[],
  ) {}

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    await this.queue;
  }

  /** Resolves when every task seen so far has been handled. */
  async drained(): Promise<void> {
    await this.polling;
    await this.queue;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => this.schedule(POLL_MS));
    }, ms);
  }

  private async poll(): Promise<void> {
    if (!this.services().length) {
      this.connected = true;
      return;
    }
    let tasks: SwarmTask[];
    try {
      // One list per service: Swarm refuses a whole list naming a service that does not exist (yet).
      const lists = await Promise.all(this.services().map((service) => listTasks(this.docker, { 'desired-state': ['running'], service: [service] }).catch((err: unknown) => {
        if (/not found/i.test(dockerMessage(err))) return [];
        throw err;
      })));
      tasks = lists.flat();
    } catch (err) {
      this.connected = false;
      if (!this.failing) this.log.warn({ err: dockerMessage(err) }, 'cannot list the swarm\'s tasks (is this engine a swarm manager?); retrying every second');
      this.failing = true;
      return;
    }
    if (this.failing) this.log.info('listing the swarm\'s tasks works again');
    this.failing = false;
    this.connected = true;
    const running = tasks.filter((t) => t.Status.State === 'running').sort((a, b) => Date.parse(a.Status.Timestamp) - Date.parse(b.Status.Timestamp));
    const fresh = running.filter((t) => !this.seen.has(t.ID));
    for (const t of fresh) this.seen.add(t.ID);
    // Tasks gone from the list are forgotten; a task ID is never reused.
    const listed = new Set(tasks.map((t) => t.ID));
    for (const id of this.seen) if (!listed.has(id)) this.seen.delete(id);
    if (!this.primed) {
      this.primed = true;
      return;
    }
    for (const t of fresh) {
      this.queue = this.queue.then(() => this.onRunning(t)).catch((err) => {
        // Handed over again at the next poll while it still runs (a manager election, a timeout).
        this.seen.delete(t.ID);
        this.log.warn({ err, task: t.ID }, 'handling a started Swarm task failed; trying again at the next poll');
      });
    }
  }
}
