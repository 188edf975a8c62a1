/**
 * {@linkcode connect}: the way in. It dials srv's endpoint, wraps the
 * connection in a {@linkcode SrvClient} and, for an observer, registers it
 * at once; everything after that is the client's (client.ts).
 *
 * @module
 */

import { SrvClient } from "./client.ts";
import { defaultClientSocket, dialEndpoint, dialOrExplain } from "./dial.ts";
import type { ConnectOptions } from "./options.ts";

/**
 * Connects to srv; rejects with {@linkcode UnreachableError} when nothing
 * listens there. Not registered yet, unless `observe` made it an observer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connect } from "@srv/srv/client";
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
 * const client = await connect({ socket });
 * const registered = await client.register({ kind: "tool" });
 * assert.equal(registered.instance_id, identity.instanceId);
 * const pong = await client.ping(7);
 * assert.equal(pong.nonce, 7);
 * await client.close();
 * await server.shutdown();
 * await served;
 * endpoint.release();
 * ```
 */
export async function connect(options: ConnectOptions = {}): Promise<SrvClient> {
  const socket = options.socket ?? defaultClientSocket();
  const dial = options.dial ?? dialEndpoint;
  const conn = await dialOrExplain(dial, socket);
  const client = new SrvClient(socket, conn, options);
  if (options.observe !== true) return client;
  await client.register({ kind: "tool", observe: true }).catch(async (e) => {
    await client.close();
    throw e;
  });
  return client;
}
