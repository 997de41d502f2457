/** The CLI in this process (`main` of @bevzoo/runner), its stdout captured: what the end-to-end tests run. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '@bevzoo/runner';

export async function runCli(argv: string[]): Promise<{ code: number; stdout: string }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string | Uint8Array) => (chunks.push(String(s)), true)) as typeof process.stdout.write;
  try {
    return { code: await main(argv), stdout: chunks.join('') };
  } finally {
    process.stdout.write = write;
  }
}

/** A finished run's folder: its result.json and the loss of each training step (train.jsonl). */
export function readRun(dir: string) {
  return {
    result: JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')),
    losses: readFileSync(join(dir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).loss as number),
  };
}
