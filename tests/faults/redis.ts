/**
 * A Redis for the queue tests: Debian's `redis-server` on a loopback port, with an append-only file so that a restart
 * keeps the queue (as a production Redis does). `.ci/run` starts one and gives it in BEVZOO_TEST_REDIS
 * (redis://127.0.0.1:port); without it the tests start their own. `restart` is a real one: SHUTDOWN (the server
 * writes its data and exits, every client loses its connections), a pause, a new server process on the same port.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export interface TestRedis {
  url: string;
  port: number;
  /** Stop the server, wait `downMs`, start a new one on the same port and data folder. */
  restart(downMs: number): Promise<void>;
  /** Stop a server the tests started (one given by BEVZOO_TEST_REDIS is left to whoever started it). */
  stop(): void;
}

const cli = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
const up = (port: number) => cli(port, 'ping').stdout?.trim() === 'PONG';

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Why no Redis can be had here (null: one can). */
export function redisMissing(): string | null {
  if (process.env.BEVZOO_TEST_REDIS) return null;
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'redis-server is not installed (apt-get install redis-server; .ci/run does it)';
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as { port: number }).port;
  await new Promise((res) => srv.close(res));
  return port;
}

async function startServer(port: number, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'yes',
    '--logfile', join(dir, 'redis.log'), '--pidfile', join(dir, 'redis.pid'),
  ], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`redis-server on port ${port} did not start: ${r.stderr || r.stdout}`);
  await until(() => up(port), 15_000, `redis-server on port ${port}`);
}

/** The tests' Redis: BEVZOO_TEST_REDIS, or a server of their own under `root`. */
export async function testRedis(root: string): Promise<TestRedis> {
  const given = process.env.BEVZOO_TEST_REDIS;
  const port = given ? Number(new URL(given).port || 6379) : await freePort();
  let dir = join(root, 'redis');
  if (given) {
    if (!up(port)) throw new Error(`BEVZOO_TEST_REDIS=${given} does not answer PING`);
    dir = cli(port, 'config', 'get', 'dir').stdout.trim().split('\n')[1] ?? dir; // restart it on its own data
  } else await startServer(port, dir);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async restart(downMs) {
      cli(port, 'shutdown');
      await until(() => !up(port), 15_000, `redis-server on port ${port} to stop`);
      await new Promise((r) => setTimeout(r, downMs));
      await startServer(port, dir);
    },
    stop() {
      if (!given) cli(port, 'shutdown', 'nosave');
    },
  };
}
