/**
 * srv: a local IPC state server. This module is the library API: the wire
 * protocol types and codec, the pure reducer (decide/evolve), the event log,
 * the per-connection session, the server itself with its transports, and
 * the client for scripts (`connect`).
 *
 * Everything but the server and transports works without any socket:
 *
 * @example
 * ```ts
 * import { EventLog, initialState, Session, update } from "./mod.ts";
 *
 * const session = new Session();
 * const log = new EventLog();
 * let state = initialState();
 * const step = session.receiveLine('{"cmd":"register","kind":"tool","pid":7,"version":"1"}');
 * if (step.kind === "reduce") {
 *   const result = update(state, step.command, { registeredPid: null, newId: () => crypto.randomUUID() });
 *   state = result.state;
 *   session.afterReduce(step.command, result.events);
 *   for (const e of result.events) log.append({ version: e.version, json: JSON.stringify(e) });
 * }
 * state.lifecycle; // "running"
 * ```
 *
 * @module
 */

export * from "./srv/core/protocol.ts";
export {
  COMMAND_NAMES,
  type CommandEventMap,
  commandShapeAccepts,
  DOMAIN_EVENT_NAMES,
  type DomainEventName,
  isJsonObject,
  isLauncherCommandName,
  type RegisteredCommandName,
} from "./srv/core/command_schema.ts";
export * from "./srv/core/codec.ts";
export * from "./srv/core/state.ts";
export * from "./srv/core/reducer.ts";
export {
  decide,
  type LauncherIdentity,
  type ReducerContext,
  type ReducerEvent,
} from "./srv/core/decide.ts";
export * from "./srv/core/evolve.ts";
export * from "./srv/core/merge_patch.ts";
export * from "./srv/core/limits.ts";
export * from "./srv/core/event_log.ts";
export * from "./srv/core/session.ts";
export * from "./srv/core/line_splitter.ts";
export * from "./srv/server/peer.ts";
export * from "./srv/server/hub.ts";
export * from "./srv/server/server.ts";
export * from "./srv/server/server_options.ts";
export * from "./srv/transport/endpoint.ts";
export * from "./srv/server/socket_claim.ts";
export { EndpointError } from "./srv/transport/transport.ts";
export * from "./srv/server/durable_event_log.ts";
export {
  STORE_APPLICATION_ID,
  STORE_SCHEMA_VERSION,
  StoreError,
} from "./srv/server/_store_schema.ts";
export * from "./srv/server/lock_file.ts";
export * from "./srv/cli/exit_code.ts";
export * from "./srv/version.ts";
export * from "./srv/client/client.ts";
export * from "./srv/client/options.ts";
export { defaultClientSocket, dialEndpoint } from "./srv/client/dial.ts";
export type { EventsOptions, StreamItem } from "./srv/client/_event_subscription.ts";
export * from "./srv/client/errors.ts";
export * from "./srv/client/format_tree.ts";
export type * from "./srv/transport/transport.ts";
export { listenUnix, UnixConnection } from "./srv/transport/unix.ts";
export * from "./srv/transport/node_net.ts";
export * from "./srv/server/open_endpoint.ts";
