// `--queue redis://[USER:PASSWORD@]HOST:PORT[/DB]`: where a queued sweep and its workers meet.
// Checked before anything is queued: a URL that is not one is a usage error (exit 2); a server
// that does not answer within REDIS_CONNECT_TIMEOUT_MS is a failed run (exit 3), not a hang.
import { Redis, type RedisOptions } from 'ioredis';
import { UsageError } from '../run/actors.js';

export const REDIS_CONNECT_TIMEOUT_MS = 5000;

/** The BullMQ queue a sweep uses unless --queue-name says. */
export const DEFAULT_QUEUE_NAME = 'svmsim-sweep';

export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError';
}

export interface RedisTarget {
  /** For messages: the URL without its password. */
  shown: string;
  options: RedisOptions;
}

export function parseRedisUrl(flag: string, value: string): RedisTarget {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`${flag} ${value}: expected redis://HOST:PORT (e.g. redis://127.0.0.1:6379)`);
  }
  if (u.protocol !== 'redis:' || u.hostname === '') throw new UsageError(`${flag} ${value}: expected redis://HOST:PORT (e.g. redis://127.0.0.1:6379)`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw new UsageError(`${flag} ${value}: the database (after the /) must be a number`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    shown: `redis://${u.hostname}:${port}${dbText ? `/${dbText}` : ''}`,
    options: {
      host,
      port,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(dbText ? { db: Number(dbText) } : {}),
      // BullMQ's blocking commands need this (a worker waits for jobs indefinitely by design).
      maxRetriesPerRequest: null,
    },
  };
}

/** One PING with no retry: the server answers, or RedisUnreachableError says why. */
export async function probeRedis(t: RedisTarget): Promise<void> {
  const r = new Redis({ ...t.options, lazyConnect: true, connectTimeout: REDIS_CONNECT_TIMEOUT_MS, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  // The socket's error (ECONNREFUSED, ETIMEDOUT…) says why; connect() only rejects with "Connection is closed".
  let cause: Error | undefined;
  r.on('error', (e: Error) => (cause ??= e));
  try {
    await r.connect();
    await r.ping();
  } catch (e) {
    const why = cause ?? (e instanceof Error ? e : new Error(String(e)));
    throw new RedisUnreachableError(`cannot reach ${t.shown}: ${why.message}`);
  } finally {
    r.disconnect();
  }
}
