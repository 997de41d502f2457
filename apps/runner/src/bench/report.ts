/** The figures of `bench:step` and its table (pure: no tfjs, no processes). */

/** What a child process measured for one (model, kernel path): per timed step, in ms. */
export interface ChildResult {
  model: string;
  /** The kernel path asked for (BEVZOO_KERNELS). */
  path: string;
  /** The kernel path the engine took, and why. */
  kernels: string;
  kernelsReason: string;
  backend: string;
  threads: number;
  /** The engine took another path than `path`: nothing was measured. */
  unavailable: boolean;
  preset?: string;
  batchSize?: number;
  /** Trained parameters (values). */
  params?: number;
  /** (a) forward + loss alone. */
  fwd?: number[];
  /** (b) forward + loss + backward + gradient clipping. */
  fwdBwd?: number[];
  /** (c) the optimiser update. */
  opt?: number[];
  losses?: number[];
  clip?: number | null;
  /** `--profile`: one step under tf.profile, its wall time and each kernel's [name, calls, ms], largest first. */
  profile?: { wallMs: number; kernels: [string, number, number][] };
  /** `--profile`: the same for one forward(+loss) alone, without a tape (what the forward+loss column times). */
  profileForward?: { wallMs: number; kernels: [string, number, number][] };
  /** The kernel-level recording of one forward(+loss) and the PyTorch twin written from it. */
  record?: {
    dir: string;
    loss: number;
    calls: number;
    recordedCalls: number;
    leaves: number;
    kernels: [string, number][];
    /** Constants made on the host while the pass ran (see record.ts). */
    madeInPass: { count: number; values: number; largest: number[][] };
    /** Why no twin could be written (a kernel without a PyTorch mapping). */
    unmapped?: string;
  };
}

/** What the PyTorch twin printed (ms per timed step). */
export interface TorchResult {
  torch: string;
  threads: number;
  firstLoss: number;
  fwd: number[];
  fwdBwd: number[];
  opt: number[];
  /** Channels-last convolutions etc.: how the twin lays its tensors out. */
  layout?: string;
}

export interface ModelReport {
  model: string;
  rows: ChildResult[];
  /** PyTorch's figure with glibc malloc as installed. */
  torch?: TorchResult;
  /** The same twin with malloc's mmap and trim thresholds raised (@bevzoo/engine's TORCH_ALLOCATORS.tuned). */
  torchTuned?: TorchResult;
  /** Whether the twin's first loss equals the tfjs loss of the same batch (1e-3 relative). */
  twinOk?: boolean;
  notes: string[];
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

/** Medians of one row: forward+loss, backward (per step (b) − (a)), optimiser, total (per step (b) + (c)). */
export function splitMedians(r: { fwd: number[]; fwdBwd: number[]; opt: number[] }): { fwd: number; bwd: number; opt: number; total: number } {
  return {
    fwd: median(r.fwd),
    bwd: median(r.fwdBwd.map((b, i) => b - r.fwd[i]!)),
    opt: median(r.opt),
    total: median(r.fwdBwd.map((b, i) => b + r.opt[i]!)),
  };
}

const ms = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–');

/**
 * The table of one model: a row per kernel path, then PyTorch's (malloc as installed, then tuned where it ran); the
 * ratios are to each PyTorch row's total.
 */
export function formatReport(rep: ModelReport): string {
  const first = rep.rows[0];
  const head = `${rep.model}${first ? ` (preset ${first.preset}, batch ${first.batchSize}, ${((first.params ?? 0) / 1e6).toFixed(2)} M trained parameters${first.clip ? `, clip ${first.clip}` : ''})` : ''}`;
  const twins: [string, TorchResult][] = [];
  if (rep.torch) twins.push(['PyTorch', rep.torch]);
  if (rep.torchTuned) twins.push(['PyTorch, malloc tuned', rep.torchTuned]);
  const totals = twins.map(([, t]) => splitMedians(t).total);
  // One ratio column per PyTorch row ('–' where there is none, or where the twin is not the same model).
  const ratios = (total: number) => (totals.length === 0 ? ['–'] : totals.map((t) => (rep.twinOk !== false ? `${(total / t).toFixed(2)}×` : '–')));
  const lines: string[][] = [['path', 'threads', 'forward+loss ms', 'backward ms', 'optimiser ms', 'total ms', ...(twins.length ? twins.map(([n]) => `× ${n}`) : ['× PyTorch'])]];
  for (const r of rep.rows) {
    const s = splitMedians({ fwd: r.fwd ?? [], fwdBwd: r.fwdBwd ?? [], opt: r.opt ?? [] });
    lines.push([r.backend === 'wasm' ? r.path : `${r.path} (${r.backend})`, String(r.threads), ms(s.fwd), ms(s.bwd), ms(s.opt), ms(s.total), ...ratios(s.total)]);
  }
  for (const [n, t] of twins) {
    const s = splitMedians(t);
    lines.push([n.replace('PyTorch', `PyTorch ${t.torch} CPU`), String(t.threads), ms(s.fwd), ms(s.bwd), ms(s.opt), ms(s.total), ...ratios(s.total)]);
  }
  const widths = lines[0]!.map((_, j) => Math.max(...lines.map((l) => l[j]!.length)));
  const fmt = (l: string[]) => l.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  ');
  const out = [head, fmt(lines[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.slice(1).map(fmt)];
  for (const n of rep.notes) out.push(`  ${n}`);
  for (const r of rep.rows) {
    if (r.profileForward) out.push(...formatProfile(r.path, r.profileForward, 12, 'forward+loss'));
    if (r.profile) out.push(...formatProfile(r.path, r.profile));
  }
  return out.join('\n');
}

/** The profiled step of one path: its wall time, the kernels' sum, and the 12 kernels that took the most, with their share. */
export function formatProfile(path: string, p: NonNullable<ChildResult['profile']>, top = 12, what = 'one step'): string[] {
  const sum = p.kernels.reduce((s, k) => s + k[2], 0);
  const out = [`  profile (${path}): ${what} ${ms(p.wallMs)} ms under the profiler, kernels ${ms(sum)} ms in ${p.kernels.reduce((s, k) => s + k[1], 0)} calls; the most:`];
  for (const [name, calls, t] of p.kernels.slice(0, top)) out.push(`    ${name.padEnd(28)} ${ms(t).padStart(7)} ms  ${((100 * t) / Math.max(sum, 1e-9)).toFixed(1).padStart(5)} %  ×${calls}`);
  return out;
}

/** Kernel time by kernel name, largest first: [name, calls, ms]. */
export function kernelTimes(kernels: readonly { name: string; kernelTimeMs: unknown }[]): [string, number, number][] {
  const by = new Map<string, [number, number]>();
  for (const k of kernels) {
    const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = by.get(k.name) ?? [0, 0];
    by.set(k.name, [e[0] + 1, e[1] + t]);
  }
  return [...by].map(([n, [c, t]]): [string, number, number] => [n, c, t]).sort((a, b) => b[2] - a[2]);
}
