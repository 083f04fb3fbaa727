/**
 * The demo's running commentary: one line per step, prefixed with the seconds since the demo
 * began. On a terminal the sample line is rewritten in place and marks are coloured; otherwise
 * (a pipe, a CI log) every line is plain text and each sample gets a line of its own.
 */
export class Progress {
  private readonly tty: boolean;
  private sampleShown = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly startedAt = Date.now(),
  ) {
    this.tty = !!out.isTTY && !process.env.NO_COLOR;
  }

  private stamp(): string {
    return `[${((Date.now() - this.startedAt) / 1000).toFixed(1).padStart(5)}s]`;
  }

  private paint(code: number, text: string): string {
    return this.tty ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  private line(mark: string, text: string): void {
    if (this.sampleShown && this.tty) this.out.write('\n');
    this.sampleShown = false;
    this.out.write(`${this.stamp()} ${mark} ${text}\n`);
  }

  /** Something the demo does. */
  step(text: string): void {
    this.line(this.paint(36, '>'), text);
  }

  /** Something that went as it should. */
  ok(text: string): void {
    this.line(this.paint(32, '✓'), text);
  }

  /** Something rollguard found wrong (a bad deploy, a breach). */
  bad(text: string): void {
    this.line(this.paint(31, '✗'), text);
  }

  /** A detail under the last step. */
  note(text: string): void {
    this.line(' ', text);
  }

  /** A sample of the watch: rewritten in place on a terminal, a line of its own otherwise. */
  sample(text: string, breach: boolean): void {
    const body = `${this.stamp()} ${breach ? this.paint(31, '•') : this.paint(32, '•')} ${text}`;
    if (this.tty) {
      this.out.write(`\r\x1b[K${body}`);
      this.sampleShown = true;
    } else {
      this.out.write(`${body}\n`);
    }
  }
}
