/**
 * One connection's send side (docs/PROTOCOL.md §7, §10): its queue of outgoing
 * bytes, judged in bytes and time (Redis' client-output-buffer-limit: a hard
 * limit, and a soft limit that may only be held for so long), and the
 * verdict that evicts a connection past it. {@linkcode Hub} in `hub.ts`
 * holds every peer.
 *
 * @module
 */

import type { Connection } from "../transport/transport.ts";

/**
 * How far behind a connection may fall, in bytes it has not read. Unsent
 * means queued here or handed to a write the socket has not finished (its
 * kernel buffer is full); replies to the connection's own requests count
 * like broadcasts. A shared broadcast counts in full for every connection
 * that still owes it, although it is in memory once.
 */
export interface OutputLimits {
  /** Unsent bytes past which a connection is evicted at once. */
  readonly hardBytes: number;
  /**
   * Unsent bytes past which the clock starts: a connection that stays past
   * them for `softMs` is evicted. While past them, srv also stops reading
   * the connection's commands (backpressure, see `Server`).
   */
  readonly softBytes: number;
  /** How long a connection may stay past `softBytes`, in ms. */
  readonly softMs: number;
}

/**
 * Defaults of `--max-queue-bytes`, `--soft-queue-bytes` and
 * `--soft-queue-time`.
 *
 * - hard 256 MiB: above the largest single thing srv may owe one reader,
 *   so no legal unit trips it by itself: a snapshot of the largest state
 *   §10 allows (128 MiB of names and metas as JSON writes them, plus ids:
 *   at most 148 MiB, see srv/core/limits.ts) and a catch-up reply
 *   (`--max-reply-bytes`, 64 MiB) behind it. Broadcasts are
 *   shared, so this costs memory once, not once per reader.
 * - soft 8 MiB for 10 s: a reader that keeps up on average survives any
 *   burst (8 writers pipelining 2,500 pings each owe every reader about
 *   1 MiB), and taking a 148 MiB snapshot within 10 s needs 15 MB/s, far
 *   below what a local socket does. A reader that stops reading is closed
 *   10 s after it fell 8 MiB behind, or as soon as it is 256 MiB behind.
 */
export const DEFAULT_OUTPUT_LIMITS: OutputLimits = {
  hardBytes: 256 * 1024 * 1024,
  softBytes: 8 * 1024 * 1024,
  softMs: 10_000,
};

/** What {@linkcode judgeOutput} decides for one connection. */
export type OutputVerdict =
  /** Keep it; `overSoftSince` is when it went past the soft limit, or null. */
  | { readonly evict: false; readonly overSoftSince: number | null }
  /** Evict it, for this reason (logged, and kept as the close reason). */
  | { readonly evict: true; readonly reason: string };

/**
 * The eviction policy, all of it, as one pure function: given how many
 * bytes a connection has not read, since when it has been past the soft
 * limit (null: it was not), and the time now (ms, any monotonic clock),
 * keep or evict. One rule per line, in order:
 *
 * 1. past the hard limit: evict;
 * 2. within the soft limit: keep, and the soft clock stops;
 * 3. past the soft limit for the first time: keep, the clock starts now;
 * 4. past it for `softMs` or longer: evict;
 * 5. past it for less: keep, the clock runs on.
 *
 * @example
 * ```ts
 * import { judgeOutput } from "./peer.ts";
 * const limits = { hardBytes: 100, softBytes: 10, softMs: 1000 };
 * judgeOutput(50, null, 0, limits); // { evict: false, overSoftSince: 0 }
 * judgeOutput(50, 0, 1000, limits).evict; // true
 * ```
 */
export function judgeOutput(
  pendingBytes: number,
  overSoftSince: number | null,
  now: number,
  limits: OutputLimits,
): OutputVerdict {
  if (pendingBytes > limits.hardBytes) {
    return {
      evict: true,
      reason: `${pendingBytes} bytes unsent, past the hard limit of ${limits.hardBytes} bytes`,
    };
  }
  if (pendingBytes <= limits.softBytes) return { evict: false, overSoftSince: null };
  if (overSoftSince === null) return { evict: false, overSoftSince: now };
  if (now - overSoftSince >= limits.softMs) {
    return {
      evict: true,
      reason: `${pendingBytes} bytes unsent, past the soft limit of ${limits.softBytes} bytes ` +
        `for ${Math.round(now - overSoftSince)} ms (limit ${limits.softMs} ms)`,
    };
  }
  return { evict: false, overSoftSince };
}

/**
 * One unit of a send queue: complete lines, encoded once and shared by
 * every peer that gets them (a run of a turn's broadcasts is one unit).
 */
export interface Outgoing {
  readonly bytes: Uint8Array;
  /** How many events (lines) `bytes` holds. */
  readonly events: number;
  /**
   * Private to one connection (a reply, a private error): counted in the
   * hub's {@linkcode Hub.privateBytes} until written, since, unlike a
   * broadcast, each connection's copy is its own memory.
   */
  readonly private?: boolean;
  /**
   * For a private unit whose buffer several connections may hold at once
   * (an observer's snapshot, one per state version): counted in every
   * holder's own {@linkcode Peer.privateBytes}, but in the hub's total
   * only while at least one peer holds it, and then once.
   */
  readonly shared?: SharedCharge;
}

/**
 * How many peers hold one shared private buffer unsent (see
 * {@linkcode Outgoing.shared}): its bytes count once in the hub's total of
 * private output while `holders` is above zero.
 */
export class SharedCharge {
  /** Peers holding the buffer queued or in flight (a peer holding it twice counts twice). */
  holders = 0;
  /** The buffer's length. */
  readonly bytes: number;

  constructor(bytes: number) {
    this.bytes = bytes;
  }
}

/**
 * Wraps one encoded event (a whole line, `\n` included) as an {@linkcode Outgoing}.
 *
 * @example
 * ```ts
 * import { single } from "./peer.ts";
 * single(new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n')).events; // 1
 * ```
 */
export function single(bytes: Uint8Array): Outgoing {
  return { bytes, events: 1 };
}

/** How far behind an evicted connection was, and which rule evicted it. */
export interface EvictionReport {
  readonly queuedEvents: number;
  readonly queuedBytes: number;
  readonly reason: string;
}

/**
 * Units smaller than this are joined into one write (a run of small events
 * costs one syscall, not one each); a unit this large is written as it is,
 * never copied, so a big broadcast stays one buffer however many peers owe
 * it. It is also the most a peer ever copies at a time: a reader far behind
 * holds references to shared units, not a private concatenation of them.
 */
export const COALESCE_BYTES = 128 * 1024;

/** How a {@linkcode Hub} judges a peer it watches. */
interface Watch {
  readonly limits: OutputLimits;
  readonly now: () => number;
  readonly evict: (reason: string) => void;
  /** Private bytes unsent on every peer of the hub together. */
  readonly ledger: { bytes: number };
}

/**
 * One connection's outgoing side: its send queue, the write in flight, and
 * why it closed. A failed write ends output only; the connection closes
 * when the server says so (after reading the client's last commands).
 *
 * @example
 * ```ts ignore
 * import { Peer, single } from "./peer.ts";
 * const peer = new Peer(1, conn);
 * peer.enqueue(single(new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n')));
 * peer.kick(); // writes what is queued
 * peer.closeWhenDrained(2000);
 * await peer.closed;
 * ```
 */
export class Peer {
  /** Server-assigned connection id, for logs. */
  readonly id: number;
  readonly conn: Connection;
  /** Units not yet handed to a write: `#queue[#head]` onwards. */
  #queue: Outgoing[] = [];
  #head = 0;
  /** Bytes and events queued or in flight: what the client has not read. */
  #pendingBytes = 0;
  #pendingEvents = 0;
  /** Private bytes queued or in flight, and those of the write in flight. */
  #privateBytes = 0;
  #writingPrivate = 0;
  /** Shared units in the write in flight: released when it completes or is dropped. */
  #writingShared: SharedCharge[] = [];
  #writing = false;
  #closed = false;
  #closeReason: string | null = null;
  #unsentAtClose = 0;
  /** Why writing failed; output is dropped from then on. */
  #outputFailure: string | null = null;
  #closeWhenDrained = false;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set by the hub that judges this peer; null: never judged (a refused connection). */
  #watch: Watch | null = null;
  /** When the peer went past the soft limit (by `#watch.now`), or null. */
  #overSoftSince: number | null = null;
  #softTimer: ReturnType<typeof setTimeout> | undefined;
  /** The reader waiting for the backlog to shrink (see {@linkcode Peer.whenBelow}). */
  #below: { bytes: number; resolve: () => void } | null = null;
  /** Resolves once the connection is closed, for whatever reason. */
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(id: number, conn: Connection) {
    this.id = id;
    this.conn = conn;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** True once closed (by us, by eviction, or after draining). */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Why the peer was closed (the first reason given), or null while open. */
  get closeReason(): string | null {
    return this.#closeReason;
  }

  /** Events that were still unsent when the peer was closed: output lost. */
  get unsentAtClose(): number {
    return this.#unsentAtClose;
  }

  /**
   * Why a write failed (the client stopped reading, usually because it is
   * gone), or null. The connection stays open for reading: what the client
   * sent before it went must still be served.
   */
  get outputFailure(): string | null {
    return this.#outputFailure;
  }

  /** Events not yet written to the socket. */
  get pendingEvents(): number {
    return this.#pendingEvents;
  }

  /** Bytes not yet written to the socket. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Of those, the bytes private to this connection (replies, private errors). */
  get privateBytes(): number {
    return this.#privateBytes;
  }

  /**
   * Judges this peer by `limits` from now on, calling `evict` once when
   * {@linkcode judgeOutput} says so: on every enqueue, after every write,
   * and when the soft limit's time runs out with no traffic at all.
   */
  watch(
    limits: OutputLimits,
    now: () => number,
    evict: (reason: string) => void,
    ledger: { bytes: number } = { bytes: 0 },
  ): void {
    this.#watch = { limits, now, evict, ledger };
    this.#judge();
  }

  /**
   * Queues a unit (the same buffer every peer gets: never copied here) and
   * judges the peer. Returns false if that evicted it.
   */
  enqueue(out: Outgoing): boolean {
    if (this.#closed || this.#outputFailure !== null) return true;
    this.#queue.push(out);
    this.#pendingBytes += out.bytes.length;
    this.#pendingEvents += out.events;
    if (out.private) this.#countPrivate(out.bytes.length, out.shared);
    return this.#judge();
  }

  /**
   * Resolves once at most `bytes` are unsent, or the peer is closed or
   * cannot be written any more: how the server waits, without reading
   * more commands, for a client that asked for more than it has read.
   */
  whenBelow(bytes: number): Promise<void> {
    if (this.#closed || this.#pendingBytes <= bytes) return Promise.resolve();
    return new Promise((resolve) => {
      this.#below?.resolve();
      this.#below = { bytes, resolve };
    });
  }

  /** Starts writing what is queued, unless a write is already under way. */
  kick(): void {
    if (this.#writing || this.#closed) return;
    if (this.#head === this.#queue.length) {
      if (this.#closeWhenDrained) this.close("output drained");
      return;
    }
    this.#writing = true;
    this.#writeLoop();
  }

  /**
   * Closes once everything queued is written, or after `deadlineMs` at the
   * latest (a peer that stopped reading must not hold the connection open).
   */
  closeWhenDrained(deadlineMs: number): void {
    if (this.#closed) return;
    this.#closeWhenDrained = true;
    if (this.#drainTimer === undefined) {
      this.#drainTimer = setTimeout(
        () => this.close(`drain deadline (${deadlineMs} ms) passed with output unsent`),
        deadlineMs,
      );
    }
    this.kick();
  }

  /** Closes now, dropping whatever is queued; `reason` is kept for the log. */
  close(reason = "closed by server"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    this.#unsentAtClose = this.#pendingEvents;
    // Closing cancels the write in flight, which releases its buffer.
    this.#dropOutput();
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.conn.close();
    this.#resolveClosed();
  }

  /** Applies {@linkcode judgeOutput}; returns false when it evicted the peer. */
  #judge(): boolean {
    const watch = this.#watch;
    if (watch === null || this.#closed) return !this.#closed;
    // Only the time rule reads the clock: skip it on the common path.
    const now = this.#pendingBytes > watch.limits.softBytes ? watch.now() : 0;
    const verdict = judgeOutput(this.#pendingBytes, this.#overSoftSince, now, watch.limits);
    if (verdict.evict) {
      this.#clearSoftTimer();
      watch.evict(verdict.reason);
      // The hub closes the peer; without a hub, close it here.
      this.close(`evicted: ${verdict.reason}`);
      return false;
    }
    this.#overSoftSince = verdict.overSoftSince;
    if (verdict.overSoftSince === null) {
      this.#clearSoftTimer();
    } else if (this.#softTimer === undefined) {
      // A peer that reads nothing gets no write completions and maybe no
      // new traffic: only a timer can apply the time rule to it.
      const left = Math.max(0, verdict.overSoftSince + watch.limits.softMs - now);
      this.#softTimer = setTimeout(() => {
        this.#softTimer = undefined;
        this.#judge();
      }, Math.ceil(left) + 1);
    }
    return true;
  }

  /**
   * Counts private bytes queued (positive) or gone (negative): in this
   * peer's own total, and in the hub's, where a shared unit counts only
   * when its first holder takes it and its last lets it go.
   */
  #countPrivate(bytes: number, shared?: SharedCharge): void {
    this.#privateBytes += bytes;
    let hub = bytes;
    if (shared !== undefined) {
      const before = shared.holders;
      shared.holders += bytes > 0 ? 1 : -1;
      hub = before === 0 || shared.holders === 0 ? Math.sign(bytes) * shared.bytes : 0;
    }
    if (this.#watch !== null) this.#watch.ledger.bytes += hub;
  }

  #clearSoftTimer(): void {
    if (this.#softTimer !== undefined) clearTimeout(this.#softTimer);
    this.#softTimer = undefined;
  }

  /** Wakes the reader waiting in {@linkcode Peer.whenBelow} once it may go on. */
  #wakeBelow(): void {
    const below = this.#below;
    if (below !== null && (this.#closed || this.#pendingBytes <= below.bytes)) {
      this.#below = null;
      below.resolve();
    }
  }

  /**
   * The next write: a large unit as it is, or a run of small ones joined
   * into one buffer of at most {@linkcode COALESCE_BYTES}.
   */
  #nextWrite(): Outgoing {
    const queue = this.#queue;
    const first = queue[this.#head++];
    let end = this.#head;
    let bytes = first.bytes.length;
    let events = first.events;
    let own = first.private && first.shared === undefined ? bytes : 0;
    const shared: SharedCharge[] = first.shared !== undefined ? [first.shared] : [];
    while (end < queue.length && bytes + queue[end].bytes.length <= COALESCE_BYTES) {
      const next = queue[end];
      bytes += next.bytes.length;
      events += next.events;
      if (next.shared !== undefined) shared.push(next.shared);
      else if (next.private) own += next.bytes.length;
      end++;
    }
    this.#writingPrivate = own;
    this.#writingShared = shared;
    let out = first;
    if (end > this.#head) {
      const joined = new Uint8Array(bytes);
      joined.set(first.bytes, 0);
      let offset = first.bytes.length;
      for (let i = this.#head; i < end; i++) {
        joined.set(queue[i].bytes, offset);
        offset += queue[i].bytes.length;
      }
      out = { bytes: joined, events };
      this.#head = end;
    }
    // Forget written units, so their buffers can go once nobody else owes them.
    if (this.#head === queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#head < this.#queue.length && !this.#closed) {
        const out = this.#nextWrite();
        await this.conn.write(out.bytes);
        if (this.#closed) return;
        this.#pendingBytes -= out.bytes.length;
        this.#pendingEvents -= out.events;
        this.#countPrivate(-this.#writingPrivate);
        this.#writingPrivate = 0;
        this.#releaseShared();
        if (!this.#judge()) return;
        this.#wakeBelow();
      }
    } catch (e) {
      if (this.#closed) return; // our own close cancelled the write
      // Only output is over. A client that wrote a command and closed at
      // once (`echo … | socat`) still has that command unread: the read
      // side goes on to the end of its stream, then the server closes us.
      this.#outputFailure = (e as Error).message;
      this.#dropOutput();
      if (this.#closeWhenDrained) this.close(`write failed: ${this.#outputFailure}`);
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#closeWhenDrained) this.close("output drained");
  }

  /** The write in flight is done with its shared units: this peer holds them no more. */
  #releaseShared(): void {
    for (const charge of this.#writingShared) this.#countPrivate(-charge.bytes, charge);
    this.#writingShared = [];
  }

  /** Forgets everything queued or in flight. */
  #dropOutput(): void {
    this.#releaseShared();
    for (let i = this.#head; i < this.#queue.length; i++) {
      const charge = this.#queue[i].shared;
      if (charge !== undefined) this.#countPrivate(-charge.bytes, charge);
    }
    this.#queue = [];
    this.#head = 0;
    this.#pendingBytes = 0;
    this.#pendingEvents = 0;
    this.#countPrivate(-this.#privateBytes);
    this.#writingPrivate = 0;
    this.#overSoftSince = null;
    this.#clearSoftTimer();
    this.#wakeBelow();
  }
}
