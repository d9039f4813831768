/**
 * Scale-out's LogStore: logs in Redis Streams (redis-log.ts), written by one process and read by
 * any. Not used by the server yet: the step that adds workers plugs it in when SLUICE_REDIS_URL is set.
 */
import type { ExecutionEvent } from '@sluice/protocol';
import type { LoggedEvent } from '../execution/readable-log.js';
import type { LogStore, NewLogOptions, OpenedLog } from '../execution/log-store.js';
import type { RedisConnection } from './redis-connection.js';
import { RedisLogReader, RedisLogWriter, type RedisLogOptions, type RedisReaderOptions } from './redis-log.js';

export class RedisLogStore implements LogStore {
  constructor(
    private readonly conn: RedisConnection,
    /** What every log of this store shares (retention, TTLs, waits); `maxBytes` and `channel` come per log. */
    private readonly defaults: Omit<RedisLogOptions, 'maxBytes' | 'channel'> = {},
    private readonly readerOptions: RedisReaderOptions = {},
  ) {}

  create<E extends LoggedEvent = ExecutionEvent>(id: string, opts: NewLogOptions): Promise<RedisLogWriter<E>> {
    const onFailure = opts.onFailure;
    return RedisLogWriter.create<E>(this.conn, id, {
      ...this.defaults,
      maxBytes: opts.maxBytes,
      ...(opts.channel ? { channel: opts.channel } : {}),
      ...(onFailure ? { onFailure: (err: Error) => onFailure(err) } : {}),
    });
  }

  open<E extends LoggedEvent = ExecutionEvent>(id: string): Promise<RedisLogReader<E> | null> {
    return RedisLogReader.open<E>(this.conn, id, this.readerOptions);
  }

  /** `lost` when the cluster's record of the execution or run is in Redis but its log is not (see RedisLogReader.openOrWhy). */
  openOrWhy<E extends LoggedEvent = ExecutionEvent>(id: string): Promise<OpenedLog<RedisLogReader<E>>> {
    return RedisLogReader.openOrWhy<E>(this.conn, id, this.readerOptions);
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
