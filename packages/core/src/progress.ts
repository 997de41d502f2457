/**
 * A progress display on stderr: on a TTY a cli-progress bar redrawn in place; otherwise (CI logs, a child run whose
 * stderr the matrix captures) a plain line every `intervalMs`. cli-progress's own non-TTY mode prints from a timer
 * only, which a synchronous training or evaluation loop never lets run, so those lines are written here on update.
 * Both show done/total, rate, elapsed, ETA and any extra fields (e.g. the loss).
 */
import cliProgress from 'cli-progress';

export interface ProgressOptions {
  total: number;
  label: string;
  /** Unit shown in the rate (e.g. "samples", "steps"). */
  unit?: string;
  stream?: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Minimum milliseconds between redraws on a TTY / between lines otherwise. */
  intervalMs?: number;
  /** Print nothing. */
  silent?: boolean;
}

export interface Progress {
  /** Set the number done (absolute) and optional fields such as `{ loss: 0.42 }`. */
  update(done: number, fields?: Record<string, string | number>): void;
  tick(n?: number, fields?: Record<string, string | number>): void;
  /** Final line (always printed; on a TTY it also stops the bar's redraw timer, so call it in a `finally`). */
  done(message?: string): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

function fmtField(v: string | number): string {
  if (typeof v !== 'number') return v;
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return v.toFixed(Math.abs(v) >= 100 ? 1 : 4);
}

export function createProgress(opts: ProgressOptions): Progress {
  if (opts.silent) return { update() {}, tick() {}, done() {} };
  const stream = opts.stream ?? process.stderr;
  const interval = opts.intervalMs ?? (stream.isTTY ? 100 : 10_000);
  const start = Date.now();
  let done = 0;
  let fields: Record<string, string | number> = {};
  const stats = (): string => {
    const el = (Date.now() - start) / 1000;
    const rate = el > 0 ? done / el : 0;
    const eta = done >= opts.total ? 0 : rate > 0 ? (opts.total - done) / rate : Infinity;
    const pct = opts.total > 0 ? Math.min(100, (100 * done) / opts.total) : 100;
    const extra = Object.entries(fields).map(([k, v]) => ` ${k} ${fmtField(v)}`).join('');
    return `${done}/${opts.total} (${pct.toFixed(0)}%) ${rate.toFixed(rate < 10 ? 2 : 0)} ${opts.unit ?? 'it'}/s elapsed ${formatDuration(el)} eta ${formatDuration(eta)}${extra}`;
  };
  const set = (d: number, f?: Record<string, string | number>) => {
    done = d;
    if (f) fields = { ...fields, ...f };
  };

  if (stream.isTTY) {
    // The text changes on update only: cli-progress's timer then redraws nothing while another bar (an evaluation
    // inside a training) draws. Its cursor save/restore (ESC 7, ESC 8) is dropped: the bar is one line, and a
    // restore to screen coordinates is wrong once other output scrolled the screen.
    let shown = stats();
    const bar = new cliProgress.SingleBar({
      stream: {
        isTTY: true,
        get columns() {
          return stream.columns;
        },
        write: (s: string) => s === '\x1b7' || s === '\x1b8' || stream.write(s),
      } as unknown as NodeJS.WritableStream,
      fps: 1000 / Math.max(1, interval),
      barsize: 24,
      barCompleteChar: '#',
      barIncompleteChar: '.',
      linewrap: true, // cut the line at the terminal width (no wrap-off escape codes that a killed process would leave behind)
      format: (o, p) => `${opts.label} [${cliProgress.Format.BarFormat(p.progress, o)}] ${shown}`,
    });
    bar.start(opts.total, 0);
    return {
      update(d, f) {
        set(d, f);
        shown = stats();
        bar.update(d);
      },
      tick(n = 1, f) {
        this.update(done + n, f);
      },
      done(message) {
        shown = stats();
        bar.stop();
        if (message) stream.write(`${message}\n`);
      },
    };
  }

  let last = 0;
  let printed = -1;
  const line = () => {
    last = Date.now();
    printed = done;
    stream.write(`${opts.label} ${stats()}\n`);
  };
  return {
    update(d, f) {
      set(d, f);
      if (d >= opts.total || Date.now() - last >= interval) line();
    },
    tick(n = 1, f) {
      this.update(done + n, f);
    },
    done(message) {
      if (printed !== done) line();
      if (message) stream.write(`${message}\n`);
    },
  };
}
