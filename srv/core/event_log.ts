/**
 * The event log: the newest logged events in a memory ring, answering
 * `get_events{since}` (docs/PROTOCOL.md §6). {@linkcode EventHistory} is the seam
 * a durable store implements to reach further back.
 *
 * @module
 */

import type { LoggedEvent, LogStats, U64 } from "./protocol.ts";
import { sinceBound, truncatedAfter } from "./_since.ts";
import type { State } from "./state.ts";

/** One logged event: its version and the exact JSON line that was broadcast. */
export interface LogEntry {
  /** The event's version. */
  readonly version: number;
  /** Compact JSON of the event, without the trailing newline. */
  readonly json: string;
  /**
   * The event itself, when the caller has it: a durable store reads from it
   * which rows of the tree changed (and parses `json` when it is absent).
   */
  readonly event?: LoggedEvent;
}

/**
 * What {@linkcode EventHistory.eventsSince} returns: the entries, oldest
 * first, and `cut` when older ones after `since` were left out to fit the
 * byte budget (so the reply must say `truncated`).
 */
export interface LogEntries extends Array<LogEntry> {
  /** True when older entries after `since` were left out to fit the byte budget. */
  cut?: boolean;
  /**
   * The same events as UTF-8 when the history holds them so (the memory
   * ring does): runs of whole lines, each ending in `\n`, oldest first.
   * A reply built from these never decodes the events into strings.
   */
  runs?: Uint8Array[];
}

/**
 * Default of `--max-reply-bytes`: the most one `event_list` reply carries,
 * 64 MiB. The reply is built as bytes, never as one string, and each event
 * in it is its own string of at most one line (`--max-line-bytes`, 1 MiB,
 * bounds what a command can put into one event), so no string in the reply
 * path comes near V8's limit of 2^29 - 24 characters (about 512 Mi). The
 * budget bounds the bytes: 64 MiB is a thousand events of the largest
 * meta §10 allows (64 KiB), or the whole default ring (4,096 events) of
 * 16 KiB each; a client that asked for more gets the newest that fit and
 * `truncated: true`, and resyncs with a snapshot, as on any truncation.
 */
export const DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024;

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
  /**
   * Logged events with version strictly greater than `since`, oldest first.
   * With `maxBytes`, only the newest of them whose lines (UTF-8, one
   * separator byte each) fit in it, and `cut` set when that left any out.
   */
  eventsSince(since: U64, maxBytes?: number): LogEntries;
  /** Whether events after `since` are no longer retained. */
  isTruncated(since: U64): boolean;
  /**
   * The lines of the newest `count` events, already encoded, as one view
   * (see {@linkcode EventLog.newestLines}); null when not at hand.
   */
  newestLines?(count: number): Uint8Array | null;
  /** What `server_info.log` reports. */
  stats(): LogStats;
}

const utf8Decoder = new TextDecoder();

/** A plain entry whose JSON is decoded from `bytes` on first use. */
function lazyEntry(version: number, bytes: Uint8Array): LogEntry {
  let json: string | undefined;
  return {
    version,
    get json(): string {
      return json ??= utf8Decoder.decode(bytes);
    },
  };
}

/** Events the memory ring keeps by default (docs/PROTOCOL.md §6). */
export const DEFAULT_RING_CAPACITY = 4096;

/**
 * Bytes of event lines the memory ring holds by default, besides its event
 * count: the default `--max-reply-bytes`. An event further back from the
 * newest than a reply can carry is never in a reply built from the ring
 * (a reply holds the newest events that fit), so the ring loses nothing
 * by dropping it; a durable store answers for it from disk. Without this
 * bound 4,096 events of 390 KB each (`reorder_tabs_bulk` of 10,000 tabs)
 * held 1.6 GB of ring, 3.2 GB of RSS.
 */
export const DEFAULT_RING_BYTES: number = DEFAULT_MAX_REPLY_BYTES;

/** Bytes of one shared storage block of the ring. */
const BLOCK_BYTES = 256 * 1024;
/** Events at least this large get a block of their own. */
const OWN_BLOCK_BYTES = BLOCK_BYTES / 4;
const LF = 0x0a;

/**
 * A fixed-size ring of the newest logged events. Appending past capacity
 * evicts the oldest. Pure data structure: no I/O.
 *
 * The events' JSON is kept as UTF-8 in large blocks, indexed by typed
 * arrays, not as one string and one object per event: a ring of thousands
 * of live entries would otherwise be promoted into V8's old generation at
 * the event rate and collected there, which cost the server about a third
 * of its throughput.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventLog } from "@srv/srv/core";
 *
 * const log = new EventLog(2);
 * log.append({ version: 1, json: '{"event":"pong","nonce":1,"version":1}' });
 * log.append({ version: 2, json: '{"event":"pong","nonce":2,"version":2}' });
 * log.append({ version: 3, json: '{"event":"pong","nonce":3,"version":3}' });
 * assert.deepEqual(log.eventsSince(0).map((e) => e.version), [2, 3]);
 * assert.equal(log.isTruncated(0), true); // version 1 is gone
 * ```
 */
export class EventLog implements EventHistory {
  /** Most events retained; older ones drop off. */
  readonly capacity: number;
  /** Most bytes of lines (UTF-8, with their newline) retained; the newest event always is. */
  readonly maxBytes: number;
  #bytes = 0;
  // Slot i holds one event: its version, the serial of the block holding
  // its bytes, and where in that block (the line ends with "\n").
  readonly #versions: Float64Array;
  readonly #blockOf: Float64Array;
  readonly #offsets: Uint32Array;
  readonly #lengths: Uint32Array;
  /** Slot of the oldest event, and how many there are. */
  #head = 0;
  #size = 0;
  /** Blocks by serial, and how many retained events each holds. */
  readonly #blocks = new Map<number, Uint8Array>();
  readonly #live = new Map<number, number>();
  #nextSerial = 0;
  /** The shared block being filled, its serial, and the first free byte. */
  #fill: Uint8Array | null = null;
  #fillSerial = -1;
  #fillPos = 0;
  static readonly #encoder = new TextEncoder();
  static readonly #decoder = new TextDecoder();

  /** Keeps at most `capacity` events and `maxBytes` bytes of their lines. */
  constructor(capacity: number = DEFAULT_RING_CAPACITY, maxBytes: number = DEFAULT_RING_BYTES) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    }
    if (!(maxBytes >= 1)) throw new RangeError(`ring bytes must be positive, got ${maxBytes}`);
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    this.#versions = new Float64Array(capacity);
    this.#blockOf = new Float64Array(capacity);
    this.#offsets = new Uint32Array(capacity);
    this.#lengths = new Uint32Array(capacity);
  }

  /** How many events the ring holds. */
  get size(): number {
    return this.#size;
  }

  append(entry: LogEntry): void {
    const newest = this.newest;
    if (newest !== null && entry.version <= newest) {
      throw new RangeError(`event version ${entry.version} is not above ${newest}`);
    }
    if (this.#size === this.capacity) this.#evictOldest();
    const [serial, offset, length] = this.#store(entry.json);
    while (this.#size > 0 && this.#bytes + length > this.maxBytes) this.#evictOldest();
    this.#bytes += length;
    this.#live.set(serial, (this.#live.get(serial) ?? 0) + 1);
    const slot = (this.#head + this.#size) % this.capacity;
    this.#versions[slot] = entry.version;
    this.#blockOf[slot] = serial;
    this.#offsets[slot] = offset;
    this.#lengths[slot] = length;
    this.#size++;
  }

  /** Nothing to do: memory is as durable as the ring gets. */
  commit(_state: State): void {}

  /** Version of the oldest retained event, or null when empty. */
  get oldest(): number | null {
    return this.#size === 0 ? null : this.#versions[this.#head];
  }

  /** Version of the newest retained event, or null when empty. */
  get newest(): number | null {
    return this.#size === 0 ? null : this.#versions[(this.#head + this.#size - 1) % this.capacity];
  }

  /**
   * The lines of the newest `count` events as the ring stores them (UTF-8,
   * each ending in `\n`), as one view into its storage, not a copy; null
   * when they do not lie one after another in one block (a block boundary,
   * a large event stored apart) or are not all retained. The store writes
   * a turn's batch from these bytes, so an event is encoded once.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { EventLog } from "./event_log.ts";
   * const log = new EventLog();
   * log.append({ version: 1, json: '{"event":"pong","nonce":1,"version":1}' });
   * log.append({ version: 2, json: '{"event":"pong","nonce":2,"version":2}' });
   * const lines = new TextDecoder().decode(log.newestLines(2)!);
   * assert.equal(lines.split("\n").length, 3);
   * ```
   */
  newestLines(count: number): Uint8Array | null {
    if (!(count >= 1 && count <= this.#size)) return null;
    const first = (this.#head + this.#size - count) % this.capacity;
    const serial = this.#blockOf[first];
    const start = this.#offsets[first];
    let end = start;
    for (let i = 0; i < count; i++) {
      const slot = (first + i) % this.capacity;
      if (this.#blockOf[slot] !== serial || this.#offsets[slot] !== end) return null;
      end += this.#lengths[slot];
    }
    return this.#blocks.get(serial)?.subarray(start, end) ?? null;
  }

  eventsSince(since: U64, maxBytes: number = Infinity): LogEntries {
    const out: LogEntries = [];
    let i = this.#firstAfter(since);
    if (maxBytes !== Infinity) {
      // The newest that fit: walk back from the newest, adding up stored
      // lengths (the stored "\n" stands for the separator).
      let first = this.#size;
      let bytes = 0;
      while (first > i) {
        const length = this.#lengths[(this.#head + first - 1) % this.capacity];
        if (bytes + length > maxBytes) break;
        bytes += length;
        first--;
      }
      if (first > i) out.cut = true;
      i = first;
    }
    // Within a budget the caller is building a reply: hand it the stored
    // bytes, and decode an entry's JSON only if it is asked for.
    const runs: Uint8Array[] | null = maxBytes === Infinity ? null : (out.runs = []);
    while (i < this.#size) {
      // Events stored one after another in one block decode in one call.
      const first = (this.#head + i) % this.capacity;
      const serial = this.#blockOf[first];
      const start = this.#offsets[first];
      let end = start + this.#lengths[first];
      let j = i + 1;
      for (; j < this.#size; j++) {
        const slot = (this.#head + j) % this.capacity;
        if (this.#blockOf[slot] !== serial || this.#offsets[slot] !== end) break;
        end += this.#lengths[slot];
      }
      const block = this.#blocks.get(serial)!;
      if (runs !== null) {
        // Written bytes never change, so views stay valid after later appends.
        runs.push(block.subarray(start, end));
        let at = start;
        for (let k = i; k < j; k++) {
          const slot = (this.#head + k) % this.capacity;
          out.push(
            lazyEntry(this.#versions[slot], block.subarray(at, at + this.#lengths[slot] - 1)),
          );
          at += this.#lengths[slot];
        }
        i = j;
        continue;
      }
      const lines = EventLog.#decoder.decode(block.subarray(start, end - 1)).split("\n");
      for (let k = 0; k < lines.length; k++) {
        out.push({ version: this.#versions[(this.#head + i + k) % this.capacity], json: lines[k] });
      }
      i = j;
    }
    return out;
  }

  isTruncated(since: U64): boolean {
    return truncatedAfter(this.oldest, since);
  }

  stats(): LogStats {
    return { oldest: this.oldest, newest: this.newest, retained: this.#size };
  }

  /** Writes `json` and a newline into a block; returns where. */
  #store(json: string): [serial: number, offset: number, length: number] {
    // At most 3 bytes per UTF-16 unit, plus the newline.
    const worst = json.length * 3 + 1;
    if (worst >= OWN_BLOCK_BYTES) {
      const bytes = EventLog.#encoder.encode(json + "\n");
      const serial = this.#nextSerial++;
      this.#blocks.set(serial, bytes);
      return [serial, 0, bytes.length];
    }
    if (this.#fill === null || this.#fill.length - this.#fillPos < worst) {
      // The full block stays while events in it are retained.
      if (this.#fill !== null && !this.#live.has(this.#fillSerial)) {
        this.#blocks.delete(this.#fillSerial);
      }
      this.#fill = new Uint8Array(BLOCK_BYTES);
      this.#fillSerial = this.#nextSerial++;
      this.#fillPos = 0;
      this.#blocks.set(this.#fillSerial, this.#fill);
    }
    const offset = this.#fillPos;
    const { written } = EventLog.#encoder.encodeInto(json, this.#fill.subarray(offset));
    this.#fill[offset + written] = LF;
    this.#fillPos = offset + written + 1;
    return [this.#fillSerial, offset, written + 1];
  }

  #evictOldest(): void {
    const serial = this.#blockOf[this.#head];
    this.#bytes -= this.#lengths[this.#head];
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    const live = this.#live.get(serial)! - 1;
    if (live > 0) {
      this.#live.set(serial, live);
      return;
    }
    // No retained event is in this block any more. The block being filled
    // stays (empty space is still useful); any other goes.
    this.#live.delete(serial);
    if (serial !== this.#fillSerial) this.#blocks.delete(serial);
  }

  /** Logical index of the first entry with version > since (binary search). */
  #firstAfter(since: U64): number {
    const bound = sinceBound(since);
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#versions[(this.#head + mid) % this.capacity] <= bound) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
