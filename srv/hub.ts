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
 * to a write the socket has not finished (its kernel buffer is full). A
 * peer is judged on the backlog it had before the current turn, not
 * counting its largest pending event and its largest pending reply (see
 * {@linkcode Peer.enqueue}).
 */
export interface QueueLimits {
  /** Unsent events a connection may have before eviction. */
  readonly maxEvents: number;
  /** Unsent bytes a connection may have before eviction. */
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
  /** The largest event, and the largest reply, among the queued units. */
  #queuedLargest = 0;
  #queuedReply = 0;
  /** Events and bytes handed to the socket but not yet written. */
  #inflightEvents = 0;
  #inflightBytes = 0;
  #inflightLargest = 0;
  #inflightReply = 0;
  /** What this turn queued: judged at the next turn, once the peer had a chance to write. */
  #turnEvents = 0;
  #turnBytes = 0;
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
   * Queues a unit; returns false if the peer is past `limits`. What counts
   * is the backlog from before this turn: a client is judged on what it
   * failed to take, not on how much one turn produced (a single pipelined
   * write of thousands of commands must not evict everyone). Not held
   * against the byte bound either: the largest pending event (one event
   * bigger than the bound, a big snapshot, still reaches a client that
   * keeps up) and the largest pending `reply` (the answer to this peer's
   * own request, e.g. a long `event_list`, so a catch-up never evicts the
   * reader that asked for it). Memory per peer stays bounded by the limits
   * plus one turn, one event and one reply.
   */
  enqueue(out: Outgoing, limits: QueueLimits, reply = false): boolean {
    if (this.#closed || this.#outputFailure !== null) return true;
    const bytes = out.bytes.length;
    this.#queue.push(out);
    this.#queuedEvents += out.events;
    this.#queuedBytes += bytes;
    this.#turnEvents += out.events;
    this.#turnBytes += bytes;
    // A reply has its own allowance; the largest-event one is for broadcasts.
    if (reply) {
      if (bytes > this.#queuedReply) this.#queuedReply = bytes;
    } else if (out.largest > this.#queuedLargest) this.#queuedLargest = out.largest;
    const largest = Math.max(this.#queuedLargest, this.#inflightLargest);
    const replyBytes = Math.max(this.#queuedReply, this.#inflightReply);
    const backlogEvents = this.pendingEvents - this.#turnEvents - (replyBytes > 0 ? 1 : 0);
    const backlogBytes = this.pendingBytes - this.#turnBytes - largest - replyBytes;
    return backlogEvents <= limits.maxEvents && backlogBytes <= limits.maxBytes;
  }

  /** The turn is over: what it queued is backlog from now on. */
  endTurn(): void {
    this.#turnEvents = 0;
    this.#turnBytes = 0;
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
    // Closing cancels the write in flight, which releases its buffer.
    this.#dropOutput();
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
        this.#inflightLargest = this.#queuedLargest;
        this.#inflightReply = this.#queuedReply;
        this.#queue = [];
        this.#queuedEvents =
          this.#queuedBytes =
          this.#queuedLargest =
          this.#queuedReply =
            0;
        await this.conn.write(batch);
        this.#inflightEvents =
          this.#inflightBytes =
          this.#inflightLargest =
          this.#inflightReply =
            0;
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

  /** Forgets everything queued or in flight. */
  #dropOutput(): void {
    this.#queue = [];
    this.#queuedEvents =
      this.#queuedBytes =
      this.#queuedLargest =
      this.#queuedReply =
        0;
    this.#inflightEvents =
      this.#inflightBytes =
      this.#inflightLargest =
      this.#inflightReply =
        0;
    this.#turnEvents = this.#turnBytes = 0;
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

  /** Ends the turn: starts one batched write on every peer that got something. */
  flush(): void {
    for (const peer of this.#dirty) {
      peer.endTurn();
      peer.kick();
    }
    this.#dirty.clear();
  }
}
