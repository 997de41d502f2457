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
