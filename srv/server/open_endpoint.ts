/**
 * Turns an endpoint path into a listening {@linkcode Listener}: picks the
 * transport for the platform, claims the path so only one srv serves it,
 * and hands back what to release on shutdown.
 *
 * @module
 */

import { isPipeName } from "../transport/endpoint.ts";
import { EndpointError } from "../transport/transport.ts";
import { claimSocketPath } from "./socket_claim.ts";
import { isNamedPipeLive, listenNamedPipe } from "../transport/node_net.ts";
import type { Listener } from "../transport/transport.ts";
import { listenUnix } from "../transport/unix.ts";

/** Values of `--transport`. */
export const TRANSPORTS = ["auto", "unix", "node"] as const;
/** A value of `--transport`: `auto` is `node` on Windows, `unix` elsewhere. */
export type TransportChoice = typeof TRANSPORTS[number];

/** What {@linkcode openEndpoint} needs. */
export interface OpenEndpointOptions {
  /** The socket path or pipe name. */
  readonly path: string;
  /** Which transport to use; `auto` picks by platform. */
  readonly transport: TransportChoice;
  /** The platform, which decides socket or named pipe. */
  readonly os: typeof Deno.build.os;
  /** The user id that must own the socket directory (Unix); null skips the check. */
  readonly uid: number | null;
}

/** A listening endpoint and how to give it back. */
export interface OpenEndpoint {
  /** Accepts the connections. */
  readonly listener: Listener;
  /** The transport actually used. */
  readonly transport: "unix" | "node";
  /** True when a socket file left by a dead srv was removed first. */
  readonly replacedStale: boolean;
  /** Removes the socket file and lock (Unix); nothing to do for a pipe. */
  release(): void;
}

/**
 * Opens the endpoint. On Unix (either transport) the path is claimed first:
 * a 0700 directory the user owns, a lock beside the socket, a stale socket
 * replaced, and the socket 0600 from birth. On Windows the path must be a
 * pipe name; a live server there (a probe connect succeeds) or a name some
 * other process already created (Deno creates the first instance with
 * `FILE_FLAG_FIRST_PIPE_INSTANCE`) is an `in_use` {@linkcode EndpointError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openEndpoint } from "@srv/srv/server";
 *
 * const endpoint = await openEndpoint({
 *   path: Deno.build.os === "windows"
 *     ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *     : `${Deno.makeTempDirSync()}/srv/srv.sock`,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: Deno.uid(), // null on Windows
 * });
 * assert.equal(endpoint.transport, Deno.build.os === "windows" ? "node" : "unix");
 * // ... serve endpoint.listener, then:
 * endpoint.listener.close();
 * endpoint.release();
 * ```
 */
export async function openEndpoint(options: OpenEndpointOptions): Promise<OpenEndpoint> {
  const { path, os, uid } = options;
  if (os === "windows") {
    if (options.transport === "unix") {
      throw new EndpointError(
        "unsafe",
        "--transport unix is not available on Windows; use auto or node (named pipes)",
      );
    }
    if (!isPipeName(path)) {
      throw new EndpointError(
        "unsafe",
        `on Windows the endpoint must be a named pipe such as \\\\.\\pipe\\srv-NAME, got ${path}`,
      );
    }
    // The first-instance flag already makes a second listen fail; probing
    // first gives the clear message even for a server that is not srv.
    if (await isNamedPipeLive(path)) {
      throw new EndpointError("in_use", `another srv is already running at ${path}`);
    }
    const listener = await listenNamedPipe(path);
    return { listener, transport: "node", replacedStale: false, release() {} };
  }
  const transport = options.transport === "node" ? "node" : "unix";
  const claim = await claimSocketPath(path, uid);
  try {
    const listener = transport === "unix"
      ? listenUnix(path)
      : await listenNamedPipe(path, { privateSocket: true });
    return {
      listener,
      transport,
      replacedStale: claim.replacedStale,
      release: () => claim.release(),
    };
  } catch (e) {
    claim.release();
    throw e;
  }
}
