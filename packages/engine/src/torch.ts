import { spawnSync } from 'node:child_process';

/**
 * A python that imports torch, for the benchmarks' PyTorch figures (`bench:engine`, the runner's `bench:step`):
 * BEVZOO_PYTHON, then Debian's /usr/bin/python3 (`python3-torch`), then python3 on the PATH. Either the python and
 * its torch version, or why none was found.
 */
export function findTorchPython(): { python: string; torch: string } | { why: string } {
  const tried: string[] = [];
  const candidates = [process.env.BEVZOO_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  for (const p of [...new Set(candidates)]) {
    const r = spawnSync(p, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0 && r.stdout.trim()) return { python: p, torch: r.stdout.trim() };
    tried.push(`${p}: ${r.error ? (r.error as NodeJS.ErrnoException).code ?? r.error.message : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`)}`);
  }
  return { why: `no python with torch found (${tried.join('; ')}); install python3-torch or set BEVZOO_PYTHON` };
}

/**
 * PyTorch's two allocator settings in the benchmarks. As installed, glibc's `malloc` maps every allocation above its
 * mmap threshold (activations of megabytes) and unmaps it when freed, so each step faults its pages in again: on this
 * project's 2-core VMs that made PyTorch's step 1.1–2.9× slower, and unsteady. Raising the thresholds (`tuned`) keeps
 * freed memory for reuse, as PyTorch's own CUDA caching allocator does on GPUs; any user can do it with these two
 * environment variables. The benchmarks print the ratio against both.
 */
export const TORCH_ALLOCATORS = {
  default: {},
  tuned: { MALLOC_MMAP_THRESHOLD_: '1073741824', MALLOC_TRIM_THRESHOLD_: '4294967295' },
} as const satisfies Record<string, Record<string, string>>;
export type TorchAllocator = keyof typeof TORCH_ALLOCATORS;

/** The environment of a PyTorch run with `allocator` (the tuned thresholds set, or removed where `base` has them). */
export function torchEnv(allocator: TorchAllocator, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env = { ...base };
  for (const k of Object.keys(TORCH_ALLOCATORS.tuned)) delete env[k];
  return { ...env, ...TORCH_ALLOCATORS[allocator] };
}
