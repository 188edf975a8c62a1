/**
 * The pure core of srv, in the decider pattern: `decide` (decide.ts) turns a
 * command into events without touching state, `evolve` (evolve.ts) applies one
 * event, {@linkcode update} does both. Live traffic and crash recovery share
 * `evolve`, so a restart rebuilds exactly what was served. No I/O, no clock,
 * no randomness: new ids and the size limits come from the
 * {@linkcode ReducerContext}.
 *
 * @module
 */

import { decideBatchLines } from "./batch.ts";
import { decide, type ReducerContext, type ReducerEvent } from "./decide.ts";
import { evolve, evolveInPlace } from "./evolve.ts";
import type { ReducerCommand } from "./protocol.ts";
import type { State } from "./state.ts";

/** What {@linkcode update} returns. */
export interface UpdateResult {
  /** The state after the events. */
  readonly state: State;
  /** What the command caused, in order; each already has its version. */
  readonly events: ReducerEvent[];
  /**
   * Each event's `encodeEvent` text, index for index, when the reducer
   * already encoded them (a successful `batch` measured against
   * `maxBatchBytes`, docs/PROTOCOL.md §11.3), so the caller need not encode
   * them again; absent otherwise.
   */
  readonly lines?: readonly string[];
}

/**
 * Decides and applies a command: the events, and the state after all of
 * them (a `batch` too, all or nothing: docs/PROTOCOL.md §11.3). With `owned: true` the caller hands over `state` (see
 * {@linkcode evolveInPlace}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState, update } from "@srv/srv";
 *
 * const ctx = { registeredPid: null, newId: () => crypto.randomUUID() };
 * const { state, events } = update(
 *   initialState(),
 *   { cmd: "register", kind: "host", pid: 100, version: "1.0" },
 *   ctx,
 * );
 * assert.equal(state.lifecycle, "running");
 * assert.equal(events.length, 3);
 * ```
 */
export function update(
  state: State,
  command: ReducerCommand,
  ctx: ReducerContext,
  options: { owned?: boolean } = {},
): UpdateResult {
  // A batch is decided against a draft (batch.ts); its events, or its one
  // private error (version 0, which moves nothing), apply like any others.
  const { events, lines } = command.cmd === "batch"
    ? decideBatchLines(state, command, ctx)
    : { events: decide(state, command, ctx), lines: null };
  const apply = options.owned === true ? evolveInPlace : evolve;
  let next = state;
  for (const event of events) next = apply(next, event);
  return lines === null ? { state: next, events } : { state: next, events, lines };
}
