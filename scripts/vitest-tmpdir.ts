/**
 * vitest global setup: every test run gets its own temporary folder as TMPDIR (os.tmpdir() of the test processes and
 * of the CLIs they start), removed when the run ends. Tests make their folders with mkdtemp under it, so a run leaves
 * nothing behind in /tmp, even where a test does not clean up after itself (a synthetic dataset is 1–2 GB).
 * BEVZOO_KEEP_TEST_TMP=1 keeps the folder, and prints where it is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'bevzoo-test-'));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    if (process.env.BEVZOO_KEEP_TEST_TMP) console.log(`test temporary files kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
}
