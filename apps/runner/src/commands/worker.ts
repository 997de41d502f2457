import { type ParsedArgs, int, str } from '../args.js';
import { DEFAULT_QUEUE_NAME, redisConnection, runWorker } from '../pipeline/queue.js';

const log = (s: string) => process.stderr.write(`${s}\n`);

/** `bevzoo worker --queue redis://host:port [--concurrency n]`: run queued matrix runs until stopped (SIGINT, SIGTERM). */
export async function workerCommand(args: ParsedArgs): Promise<void> {
  const url = str(args, 'queue');
  redisConnection(url); // a malformed URL is a usage error before anything starts
  await runWorker({ url, queueName: str(args, 'queue-name', DEFAULT_QUEUE_NAME), concurrency: int(args, 'concurrency', 1), lockSeconds: int(args, 'lock-seconds', 30), log });
  await new Promise(() => {}); // until a signal ends the process
}
