/**
 * A progress bar on stderr: a redrawn line on a TTY, plain periodic lines otherwise (CI logs).
 * Shows done/total, rate, ETA and any extra fields (e.g. the loss).
 */
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
  /** Final line (always printed). */
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
  const stream = opts.stream ?? process.stderr;
  const tty = !!stream.isTTY;
  const interval = opts.intervalMs ?? (tty ? 100 : 10_000);
  const start = Date.now();
  let last = 0;
  let done = 0;
  let fields: Record<string, string | number> = {};
  let printedDone = -1;
  const line = (): string => {
    const el = (Date.now() - start) / 1000;
    const rate = el > 0 ? done / el : 0;
    const eta = done >= opts.total ? 0 : rate > 0 ? (opts.total - done) / rate : Infinity;
    const frac = opts.total > 0 ? Math.min(1, done / opts.total) : 1;
    const width = 24;
    const bar = tty ? `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ` : '';
    const extra = Object.entries(fields).map(([k, v]) => ` ${k} ${fmtField(v)}`).join('');
    return `${opts.label} ${bar}${done}/${opts.total} (${(frac * 100).toFixed(0)}%) ${rate.toFixed(rate < 10 ? 2 : 0)} ${opts.unit ?? 'it'}/s elapsed ${formatDuration(el)} eta ${formatDuration(eta)}${extra}`;
  };
  const draw = (force: boolean) => {
    if (opts.silent) return;
    const now = Date.now();
    if (!force && now - last < interval) return;
    last = now;
    printedDone = done;
    stream.write(tty ? `\r\x1b[2K${line()}` : `${line()}\n`);
  };
  return {
    update(d, f) {
      done = d;
      if (f) fields = { ...fields, ...f };
      draw(d >= opts.total);
    },
    tick(n = 1, f) {
      this.update(done + n, f);
    },
    done(message) {
      if (opts.silent) return;
      if (tty) stream.write(`\r\x1b[2K${line()}\n`);
      else if (printedDone !== done) stream.write(`${line()}\n`);
      if (message) stream.write(`${message}\n`);
    },
  };
}
