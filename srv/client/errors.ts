/**
 * What the client ({@linkcode ./client.ts}) rejects with: the server's own
 * error ({@linkcode SrvError}), a connection that went away before the
 * answer ({@linkcode ConnectionLostError}), and no server at the endpoint
 * ({@linkcode UnreachableError}).
 *
 * @module
 */

import type { ErrorCode, ErrorEvent } from "../core/protocol.ts";

/**
 * The server answered a command with an `error` event: `code`, `message` and
 * `fatal` are the server's, `version` is 0 for a private error and the
 * event's version for a broadcast one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, SrvError } from "@srv/srv/client";
 * import { openEndpoint, Server } from "@srv/srv/server";
 *
 * // An in-process server, so the example runs.
 * // Its endpoint: a named pipe on Windows, a socket file elsewhere.
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/srv.sock`;
 * const endpoint = await openEndpoint({
 *   path: socket,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: null,
 * });
 * const identity = { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() };
 * const server = new Server({ identity });
 * const served = server.serve(endpoint.listener);
 *
 * const client = await connect({ socket, reconnect: false });
 * await client.register({ kind: "tool" });
 * await assert.rejects(
 *   client.command({ cmd: "create_tab", workspace_id: "no-such-workspace", name: "shell" }),
 *   SrvError,
 * );
 * await client.close();
 * await server.shutdown();
 * await served;
 * endpoint.release();
 * ```
 */
export class SrvError extends Error {
  /** The refusal's code. */
  readonly code: ErrorCode;
  /** Whether the server closed the connection after it. */
  readonly fatal: boolean;
  /** The error event's version: 0 when it was private. */
  readonly version: number;
  /** The error event as the server sent it. */
  readonly event: ErrorEvent;

  /** Wraps the `error` event the server sent. */
  constructor(event: ErrorEvent) {
    super(event.message);
    this.name = "SrvError";
    this.code = event.code;
    this.fatal = event.fatal;
    this.version = event.version;
    this.event = event;
  }
}

/**
 * The connection closed before a command was answered. The command may or
 * may not have been applied: look at the event stream (or the state) to
 * find out before sending it again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConnectionLostError, connect } from "@srv/srv/client";
 * import { openEndpoint, Server } from "@srv/srv/server";
 *
 * // An in-process server, so the example runs.
 * // Its endpoint: a named pipe on Windows, a socket file elsewhere.
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/srv.sock`;
 * const endpoint = await openEndpoint({
 *   path: socket,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: null,
 * });
 * const identity = { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() };
 * const server = new Server({ identity });
 * const served = server.serve(endpoint.listener);
 *
 * const client = await connect({ socket, reconnect: false });
 * await client.register({ kind: "tool" });
 * await server.shutdown(); // the server goes away under the client
 * await served;
 * await assert.rejects(
 *   client.command({ cmd: "create_workspace", name: "main" }),
 *   ConnectionLostError,
 * );
 * await client.close();
 * endpoint.release();
 * ```
 */
export class ConnectionLostError extends Error {
  /** Made by the client when the connection drops with a command in flight. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionLostError";
  }
}

/**
 * Nothing accepts connections at the endpoint: no socket file, a socket
 * left by a dead server (connection refused), or no permission to use it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect, UnreachableError } from "@srv/srv/client";
 *
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-nowhere-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/nowhere.sock`;
 * await assert.rejects(connect({ socket }), (e) => e instanceof UnreachableError && e.path === socket);
 * ```
 */
export class UnreachableError extends Error {
  /** The endpoint that was tried. */
  readonly path: string;

  /** Made by {@linkcode connect} when nothing answers at `path`. */
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UnreachableError";
    this.path = path;
  }
}

/**
 * The server broke the protocol contract the client relies on (an answer
 * that cannot be matched to a request, an undecodable line, or a server too
 * old to report `server_info.last_command`).
 *
 * @example
 * ```ts ignore
 * import { ProtocolError } from "../../mod.ts";
 * // thrown only when talking to something that is not (this version of) srv
 * ```
 */
export class ProtocolError extends Error {
  /** Made by the client when the peer breaks the protocol. */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * A conditional batch was refused (`precondition_failed`,
 * docs/PROTOCOL.md §11.3): an entity it names changed after the version it gave. Nothing
 * was applied; read again and retry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchConflictError } from "@srv/srv/client";
 *
 * const e = new BatchConflictError({
 *   event: "error",
 *   code: "precondition_failed",
 *   message: "Batch: tab 9a2e changed at version 12 (after 10)",
 *   fatal: false,
 *   index: null,
 *   version: 0,
 * });
 * assert.deepEqual([e.entity, e.id, e.changedAt], ["tab", "9a2e", 12]);
 * ```
 */
export class BatchConflictError extends SrvError {
  /**
   * The kind of the entity that changed: `workspace`, `tab` or `block`; empty
   * (and `id` too) when the condition named a version after the server's.
   */
  readonly entity: string;
  /** Its id. */
  readonly id: string;
  /** The version it changed at (or, past what srv remembers, at or before). */
  readonly changedAt: number;

  /** Reads the entity out of the server's message. */
  constructor(event: ErrorEvent) {
    super(event);
    this.name = "BatchConflictError";
    const m = /^Batch: (\S+) (\S+) changed at version (\d+)/.exec(event.message);
    this.entity = m?.[1] ?? "";
    this.id = m?.[2] ?? "";
    this.changedAt = Number(m?.[3] ?? 0);
  }
}

/**
 * A batch was refused because one of its commands would have failed
 * (docs/PROTOCOL.md §11.3); nothing was applied. `index` is that command's
 * position, `message` the server's (it quotes the command's own error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BatchFailedError } from "@srv/srv/client";
 *
 * const e = new BatchFailedError({
 *   event: "error",
 *   code: "invalid_command",
 *   message: "Batch: command 1 (rename_tab) failed: RenameTab: tab not found: x",
 *   fatal: false,
 *   index: 1,
 *   version: 0,
 * });
 * assert.equal(e.index, 1);
 * ```
 */
export class BatchFailedError extends SrvError {
  /** The index of the command that failed. */
  readonly index: number;

  /** Wraps the server's private error. */
  constructor(event: ErrorEvent) {
    super(event);
    this.name = "BatchFailedError";
    this.index = event.index ?? -1;
  }
}

/** The typed error for a batch's refusal: conflict, failed command, or (parse) {@linkcode SrvError}. */
export function batchErrorOf(event: ErrorEvent): SrvError {
  if (event.code === "precondition_failed") return new BatchConflictError(event);
  if (typeof event.index === "number") return new BatchFailedError(event);
  return new SrvError(event);
}
