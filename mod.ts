/**
 * srv: a local IPC state server. This entry point is what a script author or
 * a reducer author reaches for: the command and event unions of the wire
 * protocol, the codec, the state and its snapshot, the pure reducer
 * (`decide`, `evolve`, `update`), and the client (`connect`, `SrvClient`, its
 * errors) with `formatTree`.
 *
 * Three more entry points carry the rest:
 * - `@srv/srv/core`: every command and event type, the event ring, `Session`
 *   and `LineSplitter`: the pure pieces a server or another client is built
 *   from.
 * - `@srv/srv/client`: the client alone, with its option types; it loads no
 *   server code and no `node:sqlite`.
 * - `@srv/srv/server`: `Server`, `DurableEventLog`, `openEndpoint` and the
 *   transports.
 *
 * @example Fold commands into state with the pure reducer, no socket needed
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTree, initialState, update } from "@srv/srv";
 *
 * let ids = 0;
 * const ctx = { registeredPid: 7, newId: () => `id-${++ids}` };
 * let state = initialState();
 * const created = update(state, { cmd: "create_workspace", name: "main" }, ctx);
 * state = created.state;
 * assert.deepEqual(created.events.map((e) => e.event), ["workspace_created"]);
 * state = update(state, { cmd: "create_tab", workspace_id: "id-1", name: "logs" }, ctx).state;
 * assert.match(formatTree(state), /logs/);
 * ```
 *
 * @module
 */

export type {
  ClientKind,
  Command,
  DomainCommand,
  DomainEvent,
  ErrorCode,
  Event,
  EventName,
  Json,
  JsonObject,
  LifecyclePhase,
  LoggedEvent,
  QueryCommand,
  ReducerCommand,
  U64,
} from "./srv/core/protocol.ts";
export { isLogged } from "./srv/core/protocol.ts";
export {
  type CommandEventMap,
  DOMAIN_EVENT_NAMES,
  type DomainEventName,
} from "./srv/core/command_schema.ts";
export {
  decodeCommand,
  decodeEvent,
  type DecodeEventResult,
  type DecodeResult,
  encodeCommand,
  encodeEvent,
  parseJson,
} from "./srv/core/codec.ts";
export * from "./srv/core/state.ts";
export {
  decide,
  type LauncherIdentity,
  type ReducerContext,
  type ReducerEvent,
} from "./srv/core/decide.ts";
export { decideBatch } from "./srv/core/batch.ts";
export { evolve } from "./srv/core/evolve.ts";
export * from "./srv/core/reducer.ts";
export { SrvClient } from "./srv/client/client.ts";
export { connect } from "./srv/client/connect.ts";
export type {
  BatchOptions,
  ClientStatus,
  ConnectOptions,
  ReconnectOptions,
  RegisterOptions,
} from "./srv/client/options.ts";
export type { EventsOptions, StreamItem } from "./srv/client/_event_subscription.ts";
export {
  BatchConflictError,
  BatchFailedError,
  ConnectionLostError,
  ProtocolError,
  SrvError,
  UnreachableError,
} from "./srv/client/errors.ts";
export { formatTree } from "./srv/client/format_tree.ts";
export { SRV_VERSION } from "./srv/version.ts";
