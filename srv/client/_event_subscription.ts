/**
 * One consumer of {@linkcode SrvClient.events}: its own queue and its place
 * in the stream. Internal to the client.
 *
 * @module
 */

import type { LoggedEvent, SrvSnapshotEvent, U64 } from "../core/protocol.ts";

/**
 * One item of {@linkcode SrvClient.events}: a logged event, in version
 * order, none missed and none twice; or a snapshot to start (over) from:
 * asked for (`requested`), or because the events in between are no longer
 * retained (`truncated`), or because the server's history is not the one
 * the stream followed (`diverged`: a server without a store restarted).
 * Events after a `resync` item follow the snapshot's version.
 */
export type StreamItem =
  | { readonly type: "event"; readonly event: LoggedEvent }
  | {
    readonly type: "resync";
    readonly reason: "requested" | "truncated" | "diverged";
    readonly snapshot: SrvSnapshotEvent;
  };

/** Options of {@linkcode SrvClient.events}. Default: live events from now on. */
export interface EventsOptions {
  /** Replay the logged events after this version first, then follow live ones. */
  readonly since?: U64;
  /**
   * Start with a `resync` item carrying a fresh snapshot, then the events
   * after it: everything a mirror of the tree needs. Ignored with `since`.
   */
  readonly snapshot?: boolean;
}
/** A consumer of the event stream: its own queue and its place in it. */
export class EventSubscription implements AsyncIterableIterator<StreamItem> {
  #items: StreamItem[] = [];
  #head = 0;
  /** Version of the last item handed over; later ones must be above it. */
  #cursor: U64 | null = null;
  /** Items held back while the replay that starts this stream is fetched. */
  #joining: StreamItem[] | null;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  readonly #detach: () => void;

  constructor(joining: boolean, detach: () => void) {
    this.#joining = joining ? [] : null;
    this.#detach = detach;
  }

  get joining(): boolean {
    return this.#joining !== null && !this.#ended;
  }

  /** A new item of the client's stream. */
  offer(item: StreamItem): void {
    if (this.#ended) return;
    if (this.#joining !== null) {
      if (item.type === "resync") {
        // A snapshot makes the pending replay moot: start from it.
        this.#joining = null;
        this.#push(item);
      } else {
        this.#joining.push(item);
      }
      return;
    }
    this.#push(item);
  }

  /** The replay arrived: hand it over, then what was held back, above `upTo`. */
  completeJoin(replay: StreamItem[], upTo: U64): void {
    if (this.#joining === null || this.#ended) return;
    const held = this.#joining;
    this.#joining = null;
    for (const item of replay) this.#push(item);
    if (this.#cursor === null || upTo > this.#cursor) this.#cursor = upTo;
    for (const item of held) this.#push(item);
  }

  #push(item: StreamItem): void {
    if (item.type === "event") {
      const v = item.event.version;
      if (this.#cursor !== null && v <= this.#cursor) return;
      this.#cursor = v;
    } else {
      // Versions may restart after a snapshot (a fresh memory server).
      this.#cursor = item.snapshot.version;
    }
    this.#items.push(item);
    this.#notify();
  }

  end(error: Error | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async next(): Promise<IteratorResult<StreamItem, undefined>> {
    while (true) {
      if (this.#head < this.#items.length) {
        const item = this.#items[this.#head++];
        if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
          this.#items = this.#items.slice(this.#head);
          this.#head = 0;
        }
        return { value: item, done: false };
      }
      if (this.#error !== null) {
        const error = this.#error;
        this.#error = null;
        throw error;
      }
      if (this.#ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  return(): Promise<IteratorResult<StreamItem, undefined>> {
    this.end(null);
    this.#items = [];
    this.#head = 0;
    this.#detach();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<StreamItem> {
    return this;
  }
}
