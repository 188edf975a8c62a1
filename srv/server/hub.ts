/**
 * Delivery (docs/PROTOCOL.md §7, §10): each event's bytes are shared by every
 * connection, each connection has a send queue judged in bytes and time
 * (Redis' client-output-buffer-limit: a hard limit, and a soft limit that
 * may only be held for so long), and a connection past it is evicted
 * instead of slowing anyone else or growing memory without limit.
 *
 * @module
 */

import {
  DEFAULT_OUTPUT_LIMITS,
  type EvictionReport,
  type Outgoing,
  type OutputLimits,
  Peer,
} from "./peer.ts";

/**
 * The set of open connections and the delivery rules. Callers enqueue for
 * a whole turn, then call {@linkcode Hub.flush} once so each peer starts
 * writing what it is owed.
 *
 * @example
 * ```ts ignore
 * import { Hub } from "./hub.ts";
 * import { Peer, single } from "./peer.ts";
 * const hub = new Hub(undefined, (peer, report) => console.warn(peer.id, report.reason));
 * hub.add(new Peer(1, conn));
 * hub.broadcast(single(new TextEncoder().encode('{"event":"pong","nonce":1,"version":1}\n')));
 * hub.flush();
 * ```
 */
export class Hub {
  readonly limits: OutputLimits;
  readonly #peers = new Set<Peer>();
  readonly #dirty = new Set<Peer>();
  readonly #onEvict: (peer: Peer, report: EvictionReport) => void;
  readonly #now: () => number;
  readonly #ledger = { bytes: 0 };

  /** `now` is the clock of the soft limit (ms); `performance.now` by default. */
  constructor(
    limits: OutputLimits = DEFAULT_OUTPUT_LIMITS,
    onEvict: (peer: Peer, report: EvictionReport) => void = () => {},
    now: () => number = () => performance.now(),
  ) {
    this.limits = limits;
    this.#onEvict = onEvict;
    this.#now = now;
  }

  /**
   * Private bytes (replies, private errors) queued or in flight on all
   * peers together: each is its own memory, unlike a shared broadcast.
   */
  get privateBytes(): number {
    return this.#ledger.bytes;
  }

  /** Open connections that receive broadcasts. */
  get size(): number {
    return this.#peers.size;
  }

  /**
   * Adds a peer: it gets broadcasts and is judged by the hub's limits.
   * `onEvict` is told, after the hub-wide callback, if this peer is evicted:
   * its owner learns it without looking the peer up.
   */
  add(peer: Peer, onEvict?: (report: EvictionReport) => void): void {
    this.#peers.add(peer);
    peer.watch(
      this.limits,
      this.#now,
      (reason) => this.#evict(peer, reason, onEvict),
      this.#ledger,
    );
  }

  /** Stops broadcasting to a peer (it is still judged until it closes). */
  remove(peer: Peer): void {
    this.#peers.delete(peer);
  }

  /** Queues a unit for every open peer (the same buffer for all). */
  broadcast(out: Outgoing): void {
    for (const peer of this.#peers) this.send(peer, out);
  }

  /** Queues a unit for one peer; the peer is evicted if that puts it past its limits. */
  send(peer: Peer, out: Outgoing): void {
    if (peer.isClosed) return;
    if (peer.enqueue(out)) this.#dirty.add(peer);
  }

  /** Ends the turn: starts writing on every peer that got something. */
  flush(): void {
    for (const peer of this.#dirty) peer.kick();
    this.#dirty.clear();
  }

  #evict(
    peer: Peer,
    reason: string,
    onEvict: ((report: EvictionReport) => void) | undefined,
  ): void {
    const report = { queuedEvents: peer.pendingEvents, queuedBytes: peer.pendingBytes, reason };
    this.#peers.delete(peer);
    this.#dirty.delete(peer);
    peer.close(`evicted: ${reason}, ${report.queuedEvents} events unsent`);
    this.#onEvict(peer, report);
    onEvict?.(report);
  }
}
