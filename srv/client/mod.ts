/**
 * The client for scripts and tools: {@linkcode connect} dials a running srv,
 * registers, and returns an {@linkcode SrvClient} that sends commands, waits
 * for their events, streams the event log and resyncs after a reconnect.
 *
 * This entry point loads neither the server nor SQLite, so a script that only
 * talks to srv stays small. The wire types it speaks are in `@srv/srv/core`
 * (and the common ones in `@srv/srv`).
 *
 * @example Connecting fails with a typed error when nothing listens
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, UnreachableError } from "@srv/srv/client";
 *
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-nowhere-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/nowhere.sock`;
 * await assert.rejects(connect({ socket, reconnect: false }), UnreachableError);
 * ```
 *
 * @module
 */

export { type Reply, SrvClient } from "./client.ts";
export { connect } from "./connect.ts";
export type {
  BatchOptions,
  ClientStatus,
  ConnectOptions,
  ReconnectOptions,
  RegisterOptions,
} from "./options.ts";
export { defaultClientSocket, dialEndpoint } from "./dial.ts";
export type { Connection } from "../transport/transport.ts";
export type { CommandEventMap } from "../core/command_schema.ts";
export type { EventsOptions, StreamItem } from "./_event_subscription.ts";
export {
  BatchConflictError,
  BatchFailedError,
  ConnectionLostError,
  ProtocolError,
  SrvError,
  UnreachableError,
} from "./errors.ts";
export { escapeControls, type EscapeOptions, formatTree } from "./format_tree.ts";
export {
  type BlockLayout,
  type Layout,
  layoutCommands,
  LayoutError,
  layoutOf,
  parseLayout,
  type TabLayout,
  type WorkspaceLayout,
} from "./layout.ts";
