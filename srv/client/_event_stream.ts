/**
 * The client's side of the event stream, across reconnects: every
 * {@linkcode EventSubscription}, the last logged event delivered, and the
 * live events held back while a resync runs. {@linkcode SrvClient} owns one
 * and drives it; internal to the client.
 *
 * @module
 */

import { encodeEvent } from "../core/codec.ts";
import {
  type Event,
  type EventListEvent,
  isLogged,
  type LoggedEvent,
  type SrvSnapshotEvent,
  type U64,
} from "../core/protocol.ts";
import type { EventSubscription, StreamItem } from "./_event_subscription.ts";
import { ConnectionLostError } from "./errors.ts";
import { eventOf, type Link } from "./_link.ts";

/**
 * The version before `v` (0 at the start): where a replay that must begin
 * with the event at `v` asks from. Exact above 2^53 - 1 too, where the
 * decoder hands versions over as `bigint`.
 */
export function versionBefore(v: U64): U64 {
  return typeof v === "bigint" ? v - 1n : Math.max(0, v - 1);
}

/** What {@linkcode EventStream.join} asks the client for. */
export interface StreamSource {
  snapshot(): Promise<SrvSnapshotEvent>;
  getEvents(since: U64): Promise<EventListEvent>;
  readonly closed: boolean;
}

/** The stream's bookkeeping, shared by every subscription of one client. */
export class EventStream {
  // The stream: live broadcasts are held back while a resync runs.
  holding: Event[] | null = null;
  lastLogged = 0;
  lastLoggedEvent: LoggedEvent | null = null;
  readonly subscriptions = new Set<EventSubscription>();

  /** Starts a stream: a replay from `since`, or a snapshot when there is none. */
  async join(
    subscription: EventSubscription,
    since: U64 | undefined,
    client: StreamSource,
  ): Promise<void> {
    while (subscription.joining) {
      try {
        if (since === undefined) {
          const snapshot = await client.snapshot();
          subscription.completeJoin(
            [{ type: "resync", reason: "requested", snapshot }],
            snapshot.version,
          );
          return;
        }
        const list = await client.getEvents(since);
        if (!list.truncated) {
          const replay: StreamItem[] = list.events.filter(isLogged).map((event) => ({
            type: "event",
            event,
          }));
          // A `since` above the current version skips live events up to it too.
          subscription.completeJoin(replay, since > list.version ? since : list.version);
        } else {
          const snapshot = await client.snapshot();
          subscription.completeJoin(
            [{ type: "resync", reason: "truncated", snapshot }],
            snapshot.version,
          );
        }
        return;
      } catch (e) {
        if (e instanceof ConnectionLostError && !client.closed) continue;
        subscription.end(e as Error);
        this.subscriptions.delete(subscription);
        return;
      }
    }
  }

  onBroadcast(event: Event): void {
    if (this.holding !== null) this.holding.push(event);
    else this.deliver(event);
  }

  deliver(event: Event): void {
    if (!isLogged(event)) return;
    if (event.version <= this.lastLogged) return; // already delivered
    this.lastLogged = event.version;
    this.lastLoggedEvent = event;
    this.offer({ type: "event", event });
  }

  offer(item: StreamItem): void {
    for (const subscription of this.subscriptions) subscription.offer(item);
  }

  /**
   * Why a replay from `since = last - 1` cannot continue the stream: events
   * are gone (`truncated`), or the server's history is not the one the
   * stream came from (its version is below ours, or its event at our last
   * version differs, as after a restart without a store).
   */
  discontinuity(list: EventListEvent): "truncated" | "diverged" | null {
    if (list.truncated) return "truncated";
    if (list.version < this.lastLogged) return "diverged";
    const last = this.lastLoggedEvent;
    if (last === null) return null;
    // `last` is the event at lastLogged, version included: the replay's
    // first event must be it, byte for byte.
    const first = list.events[0];
    if (first === undefined) return "diverged";
    return encodeEvent(first) === encodeEvent(last) ? null : "diverged";
  }

  /**
   * Catches the stream up on a fresh link that has just registered again
   * (the client module's "Resync" rule): live events are held back
   * meanwhile; the last step hands them over and turns holding off without
   * yielding, so nothing slips between replay and live. Returns true when
   * the stream resumed from a snapshot.
   */
  async catchUp(link: Link): Promise<boolean> {
    const since = versionBefore(this.lastLogged);
    const list = eventOf(await link.request({ cmd: "get_events", since }), "event_list");
    const reason = this.discontinuity(list);
    if (reason === null) {
      const held = this.holding!;
      this.holding = null;
      for (const event of list.events) this.deliver(event);
      for (const event of held) if (event.version > list.version) this.deliver(event);
      return false;
    }
    const snapshot = eventOf(await link.request({ cmd: "get_srv_snapshot" }), "srv_snapshot");
    const held = this.holding!;
    this.holding = null;
    this.lastLogged = snapshot.version;
    this.lastLoggedEvent = null;
    this.offer({ type: "resync", reason, snapshot });
    for (const event of held) {
      if (event.version > this.lastLogged) this.deliver(event);
    }
    return true;
  }
}
