/**
 * The pure core of srv, for protocol implementers and reducer authors: every
 * command and event type of the wire contract (docs/PROTOCOL.md §2–§4), the codec,
 * the state and its snapshot, the reducer (`decide`, `evolve`, `update`), the
 * event ring, the per-connection protocol rules (`Session`) and the line
 * framing (`LineSplitter`). Nothing here does I/O, reads a clock or draws a
 * random number, so all of it runs without a socket.
 *
 * The root entry point (`@srv/srv`) re-exports the parts a script or reducer
 * author reaches for; this one adds every per-command and per-event type and
 * the pieces a server is built from.
 *
 * @example Drive one connection's protocol rules and the reducer by hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { EventLog, initialState, Session, update } from "@srv/srv/core";
 *
 * const session = new Session();
 * const log = new EventLog();
 * let state = initialState();
 * const step = session.receiveLine('{"cmd":"register","kind":"tool","pid":7,"version":"1"}');
 * assert.equal(step.kind, "reduce");
 * if (step.kind === "reduce") {
 *   const result = update(state, step.command, { registeredPid: null, newId: () => "id-1" });
 *   state = result.state;
 *   session.afterReduce(step.command, result.events);
 *   for (const e of result.events) log.append({ version: e.version, json: JSON.stringify(e) });
 * }
 * assert.equal(state.lifecycle, "running");
 * ```
 *
 * @module
 */

export * from "./protocol.ts";
export {
  decodeCommand,
  decodeEvent,
  type DecodeEventResult,
  type DecodeResult,
  encodeCommand,
  encodeEvent,
  MAX_JSON_DEPTH,
  parseJson,
} from "./codec.ts";
export * from "./state.ts";
export {
  COMMAND_REGISTRY,
  type CommandEventMap,
  DOMAIN_EVENT_NAMES,
  type DomainEventName,
  type RegisteredCommand,
  type RegisteredCommandName,
} from "./command_schema.ts";
export { decide, type LauncherIdentity, type ReducerContext, type ReducerEvent } from "./decide.ts";
export { decideBatch } from "./batch.ts";
export { evolve, MAX_EXITED_PROCESSES } from "./evolve.ts";
export * from "./reducer.ts";
export * from "./merge_patch.ts";
export { DEFAULT_LIMITS, type Limits } from "./limits.ts";
export {
  DEFAULT_MAX_REPLY_BYTES,
  DEFAULT_RING_BYTES,
  DEFAULT_RING_CAPACITY,
  type EventHistory,
  EventLog,
  type LogEntries,
  type LogEntry,
} from "./event_log.ts";
export {
  observerAnswer,
  type ObserverCommand,
  Session,
  type SessionIdentity,
  type SessionStep,
} from "./session.ts";
export { DEFAULT_MAX_LINE_BYTES, LineSplitter } from "./line_splitter.ts";
