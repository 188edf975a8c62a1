/**
 * Dialing srv's endpoint: the default endpoint a client uses, and the dial
 * itself (a Unix socket, or `node:net` for a Windows named pipe), with an
 * {@linkcode UnreachableError} that says why nothing answered.
 *
 * @module
 */

import {
  defaultDataDir,
  isPipeName,
  readResolutionEnv,
  resolveEndpoint,
} from "../transport/endpoint.ts";
import { connectNamedPipe } from "../transport/node_net.ts";
import type { Connection } from "../transport/transport.ts";
import { UnixConnection } from "../transport/unix.ts";
import { UnreachableError } from "./errors.ts";

/**
 * The endpoint a client uses when none is given: the same resolution as
 * `srv serve` (`$SRV_SOCKET`, `$AGENTMUX_SRV_PIPE_PATH`, then the default).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultClientSocket } from "@srv/srv/client";
 *
 * Deno.env.set("SRV_SOCKET", "/tmp/srv-example/srv.sock");
 * assert.equal(defaultClientSocket(), "/tmp/srv-example/srv.sock");
 * Deno.env.delete("SRV_SOCKET");
 * assert.ok(defaultClientSocket()); // the per-user default, e.g. /run/user/1000/srv/srv.sock
 * ```
 */
export function defaultClientSocket(): string {
  const env = readResolutionEnv();
  const os = Deno.build.os;
  let uid: number | null = null;
  // Only the <tmpdir>/srv-<uid> fallback needs the user id.
  if (os !== "windows" && !env.SRV_SOCKET && !env.AGENTMUX_SRV_PIPE_PATH && !env.XDG_RUNTIME_DIR) {
    try {
      uid = Deno.uid();
    } catch (e) {
      throw new UnreachableError(
        "",
        `the default socket path holds the user id, which needs --allow-sys to read (${
          (e as Error).message
        }); grant it, or pass a socket`,
      );
    }
  }
  const dataDir = defaultDataDir(env, os);
  const endpoint = resolveEndpoint({ env, os, uid, dataDir: dataDir ?? "" });
  if (os === "windows" && endpoint.source === "default" && dataDir === null) {
    throw new UnreachableError(
      "",
      "no data directory to derive srv's pipe name from (LOCALAPPDATA and USERPROFILE are unset); pass a socket",
    );
  }
  return endpoint.path;
}

/**
 * Opens a connection to srv's endpoint: a named pipe (through `node:net`)
 * for a `\\.\pipe\…` name, a Unix socket (`Deno.connect`) otherwise. The
 * default `dial` of {@linkcode connect}; wrap it to observe or gate
 * connections.
 *
 * @example
 * ```ts ignore
 * import { connect } from "./connect.ts";
 * import { dialEndpoint } from "./dial.ts";
 * const client = await connect({
 *   dial: (path) => { console.error("dialing", path); return dialEndpoint(path); },
 * });
 * ```
 */
export async function dialEndpoint(path: string): Promise<Connection> {
  if (isPipeName(path)) return await connectNamedPipe(path);
  return new UnixConnection(await Deno.connect({ transport: "unix", path }));
}

/** Node's error codes (named pipes) mapped to what they mean for a client. */
function nodeErrorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : undefined;
}

/** What is at `path` when it is something other than a socket ("a regular file"), else null. */
function notASocket(path: string): string | null {
  try {
    const info = Deno.lstatSync(path);
    if (info.isFile) return "a regular file";
    if (info.isDirectory) return "a directory";
    if (info.isSymlink) return null;
    return info.isSocket === false ? "something else" : null;
  } catch {
    // Gone, or not ours to look at: the refusal stands as it is.
    return null;
  }
}

/** Dials `path`, turning a refused or missing endpoint into an {@linkcode UnreachableError}. */
export async function dialOrExplain(
  dial: (path: string) => Promise<Connection>,
  path: string,
): Promise<Connection> {
  try {
    return await dial(path);
  } catch (e) {
    const code = nodeErrorCode(e);
    if (e instanceof Deno.errors.NotFound || code === "ENOENT") {
      const what = isPipeName(path) ? "no such pipe there" : "no socket there";
      throw new UnreachableError(path, `no srv at ${path} (${what})`, { cause: e });
    }
    if (e instanceof Deno.errors.ConnectionRefused || code === "ECONNREFUSED") {
      // connect() on a file that is no socket is refused too; say which it is.
      const what = notASocket(path);
      if (what !== null) {
        throw new UnreachableError(path, `no srv at ${path} (it is ${what}, not a socket)`, {
          cause: e,
        });
      }
      throw new UnreachableError(
        path,
        `no srv at ${path} (connection refused: the socket was left by a server that is gone)`,
        { cause: e },
      );
    }
    if (e instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
      throw new UnreachableError(path, `cannot reach srv at ${path}: permission denied`, {
        cause: e,
      });
    }
    if (e instanceof Deno.errors.NotCapable) throw e;
    if (code === "EBUSY") {
      throw new UnreachableError(path, `srv at ${path} is busy: every pipe instance is in use`, {
        cause: e,
      });
    }
    throw new UnreachableError(path, `cannot reach srv at ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}
