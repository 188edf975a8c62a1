/**
 * The event log: the newest logged events in a memory ring, answering
 * `get_events{since}` (PROTOCOL.md §6). {@linkcode EventHistory} is the seam
 * a durable store implements to reach further back.
 *
 * @module
 */

import type { LogStats, U64 } from "./protocol.ts";
import type { State } from "./state.ts";

/** One logged event: its version and the exact JSON line that was broadcast. */
export interface LogEntry {
  readonly version: number;
  /** Compact JSON of the event, without the trailing newline. */
  readonly json: string;
}

/**
 * Where the server keeps logged events. The memory {@linkcode EventLog} is
 * one; a durable store wraps it and answers from disk what the ring has
 * dropped.
 */
export interface EventHistory {
  /** Adds the newest event; versions must rise strictly. */
  append(entry: LogEntry): void;
  /**
   * Makes everything appended so far durable, with the highest version
   * issued (`state.eventVersion`, which counts unlogged events too). The
   * server calls it before it broadcasts any of those events; it throws when
   * that is impossible.
   */
  commit(state: State): void;
  /** Logged events with version strictly greater than `since`, oldest first. */
  eventsSince(since: U64): LogEntry[];
  /** Whether events after `since` are no longer retained. */
  isTruncated(since: U64): boolean;
  /** What `server_info.log` reports. */
  stats(): LogStats;
}

/** Events the memory ring keeps by default (PROTOCOL.md §6). */
export const DEFAULT_RING_CAPACITY = 4096;

/**
 * A fixed-size ring of the newest logged events. Appending past capacity
 * evicts the oldest. Pure data structure: no I/O.
 *
 * @example
 * ```ts
 * import { EventLog } from "./event_log.ts";
 * const log = new EventLog(2);
 * log.append({ version: 1, json: '{"event":"pong","nonce":1,"version":1}' });
 * log.append({ version: 2, json: '{"event":"pong","nonce":2,"version":2}' });
 * log.append({ version: 3, json: '{"event":"pong","nonce":3,"version":3}' });
 * log.eventsSince(0).map((e) => e.version); // [2, 3]
 * log.isTruncated(0); // true: version 1 is gone
 * ```
 */
export class EventLog implements EventHistory {
  readonly capacity: number;
  #ring: LogEntry[] = [];
  /** Index in #ring of the oldest entry once the ring is full. */
  #head = 0;

  constructor(capacity: number = DEFAULT_RING_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  /** How many events the ring holds. */
  get size(): number {
    return this.#ring.length;
  }

  append(entry: LogEntry): void {
    const newest = this.newest;
    if (newest !== null && entry.version <= newest) {
      throw new RangeError(`event version ${entry.version} is not above ${newest}`);
    }
    if (this.#ring.length < this.capacity) {
      this.#ring.push(entry);
      return;
    }
    this.#ring[this.#head] = entry;
    this.#head = (this.#head + 1) % this.capacity;
  }

  /** Nothing to do: memory is as durable as the ring gets. */
  commit(_state: State): void {}

  /** Version of the oldest retained event, or null when empty. */
  get oldest(): number | null {
    return this.#ring.length === 0 ? null : this.#at(0).version;
  }

  /** Version of the newest retained event, or null when empty. */
  get newest(): number | null {
    return this.#ring.length === 0 ? null : this.#at(this.#ring.length - 1).version;
  }

  eventsSince(since: U64): LogEntry[] {
    const start = this.#firstAfter(since);
    const out: LogEntry[] = [];
    for (let i = start; i < this.#ring.length; i++) out.push(this.#at(i));
    return out;
  }

  isTruncated(since: U64): boolean {
    const oldest = this.oldest;
    // `since + 1` in bigint so 2^64 - 1 cannot overflow or round.
    return oldest !== null && BigInt(oldest) > BigInt(since) + 1n;
  }

  stats(): LogStats {
    return { oldest: this.oldest, newest: this.newest, retained: this.#ring.length };
  }

  #at(logicalIndex: number): LogEntry {
    return this.#ring[(this.#head + logicalIndex) % this.#ring.length];
  }

  /** Logical index of the first entry with version > since (binary search). */
  #firstAfter(since: U64): number {
    // Versions are safe integers, so any bigint beyond them compares as Infinity.
    const bound = typeof since === "bigint"
      ? (since <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(since) : Infinity)
      : since;
    let lo = 0;
    let hi = this.#ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#at(mid).version <= bound) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
