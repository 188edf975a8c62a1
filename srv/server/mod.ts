/**
 * The server side of srv, for embedding it or building another front end:
 * the {@linkcode Server} itself, the SQLite-backed {@linkcode DurableEventLog},
 * {@linkcode openEndpoint} (claim the path, pick a transport, listen) and the
 * transports underneath it. This entry point loads `node:sqlite`; a script
 * that only talks to a server wants `@srv/srv/client`.
 *
 * @example Serve in this process on a fresh endpoint and ping it
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@srv/srv/client";
 * import { openEndpoint, Server } from "@srv/srv/server";
 *
 * // A fresh endpoint: a named pipe on Windows, a socket file elsewhere.
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/srv.sock`;
 * const endpoint = await openEndpoint({
 *   path: socket,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: null,
 * });
 * const server = new Server({
 *   identity: { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() },
 * });
 * const done = server.serve(endpoint.listener);
 * const client = await connect({ socket, reconnect: false });
 * await client.register({ kind: "tool" });
 * const pong = await client.ping();
 * assert.equal(pong.event, "pong");
 * await client.close();
 * await server.shutdown();
 * await done;
 * endpoint.release();
 * ```
 *
 * @module
 */

export { Server } from "./server.ts";
export {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REGISTER_TIMEOUT_MS,
  type ServerIdentity,
  type ServerOptions,
} from "./server_options.ts";
export { DEFAULT_OUTPUT_LIMITS, type OutputLimits } from "./peer.ts";
export {
  DEFAULT_RETAIN_BYTES,
  DEFAULT_RETAIN_EVENTS,
  DurableEventLog,
  STORE_FILE,
  type StoreOptions,
  type StoreRecovery,
} from "./durable_event_log.ts";
export { StoreError } from "./_store_schema.ts";
export {
  type OpenEndpoint,
  openEndpoint,
  type OpenEndpointOptions,
  type TransportChoice,
  TRANSPORTS,
} from "./open_endpoint.ts";
export {
  type DataDirEnv,
  defaultDataDir,
  defaultEndpoint,
  type EndpointEnv,
  type EndpointInputs,
  type EndpointSource,
  pipeNameForDataDir,
  resolveEndpoint,
} from "../transport/endpoint.ts";
export { type Connection, EndpointError, type Listener } from "../transport/transport.ts";
export { listenUnix, UnixConnection } from "../transport/unix.ts";
export {
  connectNamedPipe,
  listenNamedPipe,
  NamedPipeConnection,
  type NamedPipeListenOptions,
} from "../transport/node_net.ts";
