/**
 * The private replies that can be large: catch-ups (`get_events`) and
 * observers' snapshots. Each is bounded by the budget of unread private
 * output that all connections share (`--max-queue-bytes`, docs/PROTOCOL.md
 * §10), with a floor per connection so that clients which ask and never
 * read cannot starve a healthy client's short catch-up.
 *
 * @module
 */

import { encodeEvent, encodeEventListLine, encodeEventListRuns } from "../core/codec.ts";
import type { EventHistory } from "../core/event_log.ts";
import type { U64 } from "../core/protocol.ts";
import { observerAnswer } from "../core/session.ts";
import type { State } from "../core/state.ts";
import type { Client } from "./_client.ts";
import type { Turn } from "./_turn.ts";
import type { Hub } from "./hub.ts";
import { SharedCharge } from "./peer.ts";
import type { ServerIdentity } from "./server_options.ts";

const encoder = new TextEncoder();

/**
 * The least a catch-up reply may carry whatever other connections hold
 * unread (see `floorFor`): about 5,000 typical events, enough for a client
 * back from a short drop; a longer gap is answered truncated, and the
 * client resyncs from a snapshot.
 */
const REPLY_FLOOR_BYTES = 1024 * 1024;

/** What {@linkcode Replies} reads from the server it answers for. */
export interface ReplyContext {
  readonly hub: Hub;
  readonly turn: Turn;
  readonly history: EventHistory;
  readonly identity: ServerIdentity;
  readonly maxReplyBytes: number;
  /** The server's current state (replaced as the server reduces). */
  state(): State;
}

/** An observer's snapshot: one line shared by every observer asking at its version. */
export interface SharedLine {
  readonly line: Uint8Array;
  readonly charge: SharedCharge;
}

/** Catch-ups and observers' snapshots, within the shared budget of unread replies. */
export class Replies {
  readonly #ctx: ReplyContext;
  /**
   * The observers' snapshot line of state version `version` (see
   * `observerSnapshot`), held weakly: kept while a queue or the turn holds
   * it, or until the collector takes it, never pinned by the server alone.
   */
  #snapshot: { version: number; line: WeakRef<Uint8Array>; charge: SharedCharge } | null = null;

  constructor(ctx: ReplyContext) {
    this.#ctx = ctx;
  }

  /** The state may have changed: the next observer's snapshot is encoded afresh. */
  forgetSnapshot(): void {
    this.#snapshot = null;
  }

  /**
   * What a catch-up may still carry when the shared budget of unread
   * replies is spent: clients that ask and never read must not starve a
   * healthy client's short catch-up (the soak's well-behaved client saw its
   * own events left out while attackers held the budget). A connection
   * holding less than the floor of unread private output gets up to the
   * floor: REPLY_FLOOR_BYTES, or a quarter of the soft limit if that is
   * less. So a floor never lets a connection hold more than the soft limit
   * already allows it, and a client that keeps asking without reading gets
   * one floor, not one per request.
   */
  floorFor(client: Client): number {
    const floor = Math.min(REPLY_FLOOR_BYTES, this.#ctx.hub.limits.softBytes / 4);
    const own = client.outbox.privateBytes + this.#ctx.turn.privateFor(client);
    return own >= floor ? 0 : floor - own;
  }

  /** The `event_list` answering `get_events{since}`, within the budget. */
  catchUp(client: Client, since: U64): string | Uint8Array {
    const { hub, turn, history, identity } = this.#ctx;
    // At most half the hard limit, so a catch-up alone never evicts the
    // client that asked for it; the envelope around the events is well
    // under 256 bytes.
    // And within what is left of --max-queue-bytes for the private output
    // of all connections together: each reply is its own copy, so 40
    // clients asking for 64 MiB and reading nothing held 2.1 GB (1,024
    // would hold 64 GB). Past it a reply carries fewer events, with
    // truncated: true, and the client resyncs from a (shared) snapshot.
    const hard = hub.limits.hardBytes;
    const unsent = hub.privateBytes + turn.privateBytes;
    const budget = Math.min(
      this.#ctx.maxReplyBytes,
      hard / 2,
      Math.max(hard - unsent, this.floorFor(client)),
    ) - 256;
    const entries = history.eventsSince(since, Math.max(0, budget));
    const truncated = entries.cut === true || history.isTruncated(since);
    const { instanceId } = identity;
    const version = this.#ctx.state().eventVersion;
    // From the ring's bytes when it has them: no string per event at all.
    return entries.runs !== undefined
      ? encodeEventListRuns(entries.runs, truncated, instanceId, version)
      : encodeEventListLine(entries.map((e) => e.json), truncated, instanceId, version);
  }

  /**
   * An observer's `get_srv_snapshot` (docs/PROTOCOL.md §11.1): private, but
   * one line per state version, encoded once and shared by every observer
   * that asks at that version (a big line is written uncopied, see
   * COALESCE_BYTES), instead of a whole tree (up to ~147 MiB) per ask.
   * Returns the shared line, or the message of the refusal to send instead.
   *
   * It is charged to the budget of unread private output like a catch-up
   * (§10): when all connections' unread replies plus this line would pass
   * the hard limit and the asking connection already holds its floor, it
   * gets a soft error instead. A snapshot cannot be cut short like an
   * `event_list`, so a connection under its floor gets it whole: each
   * connection may hold one snapshot past the budget, not one per ask.
   *
   * The shared line counts once in the budget, not once per connection
   * holding it: the budget bounds srv's memory, and the line is in memory
   * once however many queues hold it. Counting it per holder would make 2
   * observers holding a 147 MiB tree spend the whole default budget, and
   * cut every client's catch-up to its floor, for memory srv does not hold.
   * Each holder's own unread bytes (its floor, its backpressure, its
   * eviction) still count it in full.
   */
  observerSnapshot(client: Client): SharedLine | string {
    const { hub, turn, identity } = this.#ctx;
    const state = this.#ctx.state();
    const version = state.eventVersion;
    const cached = this.#snapshot;
    let line = cached !== null && cached.version === version ? cached.line.deref() : undefined;
    let charge: SharedCharge;
    if (line === undefined || cached === null) {
      const answer = observerAnswer(state, { cmd: "get_srv_snapshot" }, identity);
      line = encoder.encode(encodeEvent(answer!) + "\n");
      charge = new SharedCharge(line.length);
      this.#snapshot = { version, line: new WeakRef(line), charge };
    } else {
      charge = cached.charge;
    }
    const unsent = hub.privateBytes + turn.privateBytes;
    if (
      !turn.isCounted(charge, line) &&
      unsent + line.length > hub.limits.hardBytes &&
      this.floorFor(client) === 0
    ) {
      return `snapshot refused: ${unsent} bytes of replies are unread by clients; ` +
        `read yours and ask again`;
    }
    return { line, charge };
  }
}
