import { spawn } from 'node:child_process';

/**
 * Runs a command whose result is the last line of its stdout that starts with '{' (JSON). Resolves with that value,
 * or with `{ error }`: the failure text made by `failed` from the exit code or signal, the last lines of stderr (when
 * captured) and whether a result line was printed.
 */
export function runForJson<T>(
  command: string,
  args: string[],
  o: { env: NodeJS.ProcessEnv; stderr: 'inherit' | 'capture'; failed: (exit: string, stderrTail: string, printed: boolean) => string },
): Promise<T | { error: string }> {
  return new Promise((res) => {
    const p = spawn(command, args, { stdio: ['ignore', 'pipe', o.stderr === 'capture' ? 'pipe' : 'inherit'], env: o.env });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => (out += d));
    p.stderr?.on('data', (d) => (err += d));
    p.on('error', (e) => res({ error: e.message }));
    p.on('close', (code, signal) => {
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
      if (code === 0 && line) {
        try {
          res(JSON.parse(line) as T);
          return;
        } catch {
          /* below */
        }
      }
      res({ error: o.failed(signal ?? `exit code ${code}`, err.trim().split('\n').slice(-3).join(' | '), line != null) });
    });
  });
}
