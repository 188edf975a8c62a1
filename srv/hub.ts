/**
 * Delivery (PROTOCOL.md §7): each event's bytes are shared by every
 * connection, each connection has a bounded send queue written in one batch
 * per turn, and a connection that falls past its bound is evicted instead of
 * slowing anyone else or growing memory without limit.
 *
 * @module
 */

import type { Connection } from "./transport/transport.ts";

/**
 * Bounds of one connection's send queue. Unsent means queued here or handed
 * to a write the socket has not finished (its kernel buffer is full).
 */
export interface QueueLimits {
  /** Unsent events a connection may have before eviction. */
  readonly maxEvents: number;
  /**
   * Unsent bytes a connection may have before eviction, not counting the
   * oldest unsent event: one event larger than the bound (a big snapshot)
   * still reaches a client that keeps up, while memory stays bounded by
   * `maxBytes` plus one event.
   */
  readonly maxBytes: number;
}

/** Defaults of `--max-queue-events` and `--max-queue-bytes`. */
export const DEFAULT_QUEUE_LIMITS: QueueLimits = { maxEvents: 1024, maxBytes: 8 * 1024 * 1024 };

/**
 * One unit of a send queue: complete lines, encoded once and shared by
 * every peer that gets them (a turn's broadcast is one unit).
 */
export interface Outgoing {
  readonly bytes: Uint8Array;
  /** How many events (lines) `bytes` holds. */
  readonly events: number;
  /** Size in bytes of the largest of those events. */
  readonly largest: number;
}

/**
 * Wraps one encoded event (a whole line, `\n` included) as an {@linkcode Outgoing}.
 *
 * @example
 * ```ts
 * import { single } from "./hub.ts";
 * single(new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n')).events; // 1
 * ```
 */
export function single(bytes: Uint8Array): Outgoing {
  return { bytes, events: 1, largest: bytes.length };
}

/** How far behind an evicted connection was. */
export interface EvictionReport {
  readonly queuedEvents: number;
  readonly queuedBytes: number;
}

/**
 * One connection's outgoing side: its send queue, the write in flight, and
 * why it closed. A failed write ends output only; the connection closes
 * when the server says so (after reading the client's last commands).
 *
 * @example
 * ```ts ignore
 * import { Peer, single } from "./hub.ts";
 * const peer = new Peer(1, conn);
 * peer.enqueue(single(new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n')), {
 *   maxEvents: 1024,
 *   maxBytes: 8 * 1024 * 1024,
 * });
 * peer.kick(); // one write with everything queued
 * peer.closeWhenDrained(2000);
 * await peer.closed;
 * ```
 */
export class Peer {
  /** Server-assigned connection id, for logs. */
  readonly id: number;
  readonly conn: Connection;
  #queue: Outgoing[] = [];
  #queuedEvents = 0;
  #queuedBytes = 0;
  /** Events and bytes handed to the socket but not yet written. */
  #inflightEvents = 0;
  #inflightBytes = 0;
  /** Size of the largest event of the first unit of the write in flight. */
  #inflightHead = 0;
  #writing = false;
  #closed = false;
  #closeReason: string | null = null;
  #unsentAtClose = 0;
  /** Why writing failed; output is dropped from then on. */
  #outputFailure: string | null = null;
  #closeWhenDrained = false;
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
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
    return this.#queuedEvents + this.#inflightEvents;
  }

  /** Bytes not yet written to the socket. */
  get pendingBytes(): number {
    return this.#queuedBytes + this.#inflightBytes;
  }

  /**
   * Queues a unit; returns false if that puts the peer past `limits`. Two
   * things are not held against the byte bound: the largest event of the
   * oldest unsent unit (one event bigger than the bound, a big snapshot,
   * still reaches a client that keeps up), and a `reply` (the answer to
   * this peer's own request, e.g. a long `event_list`) by its own size, so a
   * big catch-up never evicts the reader that asked for it. Memory stays
   * bounded by the limit plus one event plus one reply: a peer that keeps
   * asking without reading is evicted at its next unit.
   */
  enqueue(out: Outgoing, limits: QueueLimits, reply = false): boolean {
    if (this.#closed || this.#outputFailure !== null) return true;
    this.#queue.push(out);
    this.#queuedEvents += out.events;
    this.#queuedBytes += out.bytes.length;
    const isHead = this.#inflightEvents === 0 && this.#queue.length === 1;
    const head = this.#inflightEvents > 0 ? this.#inflightHead : this.#queue[0].largest;
    const ownBytes = reply && !isHead ? out.bytes.length : 0;
    return this.pendingEvents - (reply ? out.events : 0) <= limits.maxEvents &&
      this.pendingBytes - head - ownBytes <= limits.maxBytes;
  }

  /** Starts writing what is queued, unless a write is already under way. */
  kick(): void {
    if (this.#writing || this.#closed) return;
    if (this.#queue.length === 0) {
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
    this.#unsentAtClose = this.pendingEvents;
    this.#queue = [];
    this.#queuedEvents = 0;
    this.#queuedBytes = 0;
    // Closing cancels the write in flight, which releases its buffer.
    this.#inflightEvents = 0;
    this.#inflightBytes = 0;
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.conn.close();
    this.#resolveClosed();
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue.length === 1 ? this.#queue[0].bytes : concat(this.#queue);
        this.#inflightEvents = this.#queuedEvents;
        this.#inflightBytes = this.#queuedBytes;
        this.#inflightHead = this.#queue[0].largest;
        this.#queue = [];
        this.#queuedEvents = 0;
        this.#queuedBytes = 0;
        await this.conn.write(batch);
        this.#inflightEvents = 0;
        this.#inflightBytes = 0;
      }
    } catch (e) {
      if (this.#closed) return; // our own close cancelled the write
      // Only output is over. A client that wrote a command and closed at
      // once (`echo … | socat`) still has that command unread: the read
      // side goes on to the end of its stream, then the server closes us.
      this.#outputFailure = (e as Error).message;
      this.#queue = [];
      this.#queuedEvents = 0;
      this.#queuedBytes = 0;
      this.#inflightEvents = 0;
      this.#inflightBytes = 0;
      if (this.#closeWhenDrained) this.close(`write failed: ${this.#outputFailure}`);
      return;
    } finally {
      this.#writing = false;
    }
    if (this.#closeWhenDrained) this.close("output drained");
  }
}

function concat(units: readonly Outgoing[]): Uint8Array {
  let total = 0;
  for (const u of units) total += u.bytes.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const u of units) {
    out.set(u.bytes, offset);
    offset += u.bytes.length;
  }
  return out;
}

/**
 * The set of open connections and the delivery rules. Callers enqueue for
 * a whole turn, then call {@linkcode Hub.flush} once so each peer gets one
 * write with everything it is owed.
 *
 * @example
 * ```ts ignore
 * import { Hub, Peer, single } from "./hub.ts";
 * const hub = new Hub(undefined, (peer, report) => console.warn(peer.id, report));
 * hub.add(new Peer(1, conn));
 * hub.broadcast(single(new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n')));
 * hub.flush();
 * ```
 */
export class Hub {
  readonly limits: QueueLimits;
  readonly #peers = new Set<Peer>();
  readonly #dirty = new Set<Peer>();
  readonly #onEvict: (peer: Peer, report: EvictionReport) => void;

  constructor(
    limits: QueueLimits = DEFAULT_QUEUE_LIMITS,
    onEvict: (peer: Peer, report: EvictionReport) => void = () => {},
  ) {
    this.limits = limits;
    this.#onEvict = onEvict;
  }

  /** Open connections that receive broadcasts. */
  get size(): number {
    return this.#peers.size;
  }

  /** Every peer receiving broadcasts. */
  peers(): IterableIterator<Peer> {
    return this.#peers.values();
  }

  add(peer: Peer): void {
    this.#peers.add(peer);
  }

  remove(peer: Peer): void {
    this.#peers.delete(peer);
  }

  /** Queues a unit for every open peer (the same buffer for all). */
  broadcast(out: Outgoing): void {
    for (const peer of this.#peers) this.send(peer, out);
  }

  /**
   * Queues a unit for one peer; evicts it if that overflows its queue.
   * `reply` marks the answer to the peer's own request (see {@linkcode Peer.enqueue}).
   */
  send(peer: Peer, out: Outgoing, reply = false): void {
    if (peer.isClosed) return;
    if (peer.enqueue(out, this.limits, reply)) {
      this.#dirty.add(peer);
      return;
    }
    const report = { queuedEvents: peer.pendingEvents, queuedBytes: peer.pendingBytes };
    this.#peers.delete(peer);
    this.#dirty.delete(peer);
    peer.close(
      `evicted: ${report.queuedEvents} events / ${report.queuedBytes} bytes unsent ` +
        `(limits ${this.limits.maxEvents} events / ${this.limits.maxBytes} bytes)`,
    );
    this.#onEvict(peer, report);
  }

  /** Starts one batched write on every peer that got something this turn. */
  flush(): void {
    for (const peer of this.#dirty) peer.kick();
    this.#dirty.clear();
  }
}
