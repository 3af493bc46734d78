/**
 * A progress indicator for waiting: a spinner rewriting one line on a TTY,
 * otherwise a line whenever the status changes and a "still waiting" line
 * every 10 s — so logs and CI show progress without control characters.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Progress {
  private status = '';
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastLineAt = 0;
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly enabled: boolean,
    private readonly heartbeatMs = 10_000,
  ) {
    this.tty = Boolean(out.isTTY);
    if (!enabled) return;
    this.timer = setInterval(() => this.tick(), this.tty ? 100 : 1000);
    this.timer.unref();
  }

  private elapsed(): string {
    return `${Math.round((Date.now() - this.started) / 1000)}s`;
  }

  private tick(): void {
    if (this.tty) {
      this.frame = (this.frame + 1) % FRAMES.length;
      const line = `${FRAMES[this.frame]} ${this.elapsed()} ${this.status}`;
      const max = (this.out.columns || 80) - 1; // a wrapped line could not be rewritten in place
      this.out.write(`\r\x1b[K${[...line].length > max ? [...line].slice(0, max - 1).join('') + '…' : line}`);
    } else if (Date.now() - this.lastLineAt >= this.heartbeatMs) {
      this.line(`still waiting: ${this.status}`);
    }
  }

  private line(text: string): void {
    this.lastLineAt = Date.now();
    this.out.write(`[${this.elapsed()}] ${text}\n`);
  }

  update(status: string): void {
    if (!this.enabled || status === this.status) return;
    this.status = status;
    if (this.tty) this.tick();
    else this.line(status);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.enabled && this.tty) this.out.write('\r\x1b[K');
  }
}
