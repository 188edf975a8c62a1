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

export * from "./srv/protocol.ts";
export * from "./srv/state.ts";
export * from "./srv/reducer.ts";
export * from "./srv/limits.ts";
export * from "./srv/event_log.ts";
export * from "./srv/session.ts";
export * from "./srv/framing.ts";
export * from "./srv/hub.ts";
export * from "./srv/server.ts";
export * from "./srv/endpoint.ts";
export * from "./srv/store.ts";
export * from "./srv/lock_file.ts";
export * from "./srv/exit_code.ts";
export * from "./srv/version.ts";
export * from "./srv/client.ts";
export * from "./srv/client_error.ts";
export * from "./srv/format_tree.ts";
export type * from "./srv/transport/transport.ts";
export { listenUnix, UnixConnection } from "./srv/transport/unix.ts";
export * from "./srv/transport/named_pipe.ts";
export * from "./srv/transport/open_endpoint.ts";
