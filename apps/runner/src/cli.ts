#!/usr/bin/env node
import { main } from './main.js';

// Output into a closed pipe (`bevzoo --help | head -1`) ends the process quietly instead of crashing with EPIPE.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bevzoo: unexpected error: ${(e as Error)?.stack ?? e}\n`);
    process.exitCode = 1;
  },
);
