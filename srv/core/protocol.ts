/**
 * The wire contract of docs/PROTOCOL.md §2–§4: the scalar types, and the command
 * and event types of `commands.ts` and `events.ts` (re-exported here). The
 * schemas that validate commands are in `command_schema.ts`; the codec
 * (`decodeCommand`, `encodeEvent`, `encodeCommand`, `decodeEvent`) is in
 * `codec.ts`.
 *
 * @module
 */

export * from "./commands.ts";
export * from "./events.ts";
import type { Event, EventName, LoggedEvent } from "./events.ts";

/** Largest value a u64 field can hold: 2^64 - 1. */
export const U64_MAX: bigint = (1n << 64n) - 1n;

/**
 * An unsigned 64-bit integer as it travels through srv: a plain `number`
 * while it is a safe integer, a `bigint` above 2^53 - 1 so no digit is lost.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeCommand } from "@srv/srv";
 *
 * const r = decodeCommand('{"cmd":"ping","nonce":18446744073709551615}');
 * assert(r.ok && r.command.cmd === "ping");
 * assert.equal(r.command.nonce, 18446744073709551615n);
 * ```
 */
export type U64 = number | bigint;

/** Who a connection says it is (`register.kind`). */
export type ClientKind = "host" | "renderer" | "srv" | "tool";
/** Every {@linkcode ClientKind}, in protocol order. */
export const CLIENT_KINDS: readonly ClientKind[] = ["host", "renderer", "srv", "tool"];

/** The `code` of an `error` event. */
export type ErrorCode =
  | "invalid_command"
  | "not_registered"
  | "already_registered"
  /** Protocol 2: a conditional batch's entity changed (§11.3); only ever private. */
  | "precondition_failed";

/** The server's lifecycle (`lifecycle_phase_changed`, `srv_snapshot.lifecycle`). */
export type LifecyclePhase = "starting" | "running" | "quitting" | "dead";
/** Every {@linkcode LifecyclePhase}, in protocol order. */
export const LIFECYCLE_PHASES: readonly LifecyclePhase[] = [
  "starting",
  "running",
  "quitting",
  "dead",
];

/** Any JSON value (block metadata may be any of these). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A JSON object: workspace and tab metadata, and every merge patch. */
export type JsonObject = { [key: string]: Json };

/** Version of the srv protocol extensions, sent as `registered.protocol`. */
export const PROTOCOL_EXTENSIONS_VERSION = 2;

const UNLOGGED: ReadonlySet<EventName> = new Set<EventName>([
  "error",
  "srv_snapshot",
  "event_list",
  "server_info",
]);

/**
 * Whether an event belongs in the event log (docs/PROTOCOL.md §4): replies and
 * errors do not, state changes and `pong` do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Event, isLogged } from "@srv/srv";
 *
 * assert.equal(isLogged({ event: "pong", nonce: 1, version: 3 }), true);
 * const refusal: Event = {
 *   event: "error",
 *   code: "not_registered",
 *   message: "Ping before Register",
 *   fatal: false,
 *   version: 0,
 * };
 * assert.equal(isLogged(refusal), false);
 * ```
 */
export function isLogged(event: Event): event is LoggedEvent {
  return !UNLOGGED.has(event.event);
}
