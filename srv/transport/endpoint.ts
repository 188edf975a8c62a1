/**
 * Where srv listens (docs/PROTOCOL.md §1): endpoint resolution from flag and
 * environment, the data directory default, and the Windows pipe name's
 * `hash16`. Pure naming, shared by client and server; claiming the path
 * (private directory, lock, stale socket) is `srv/server/socket_claim.ts`.
 *
 * @module
 */

import { posix, win32 } from "node:path";

/** The environment variables endpoint resolution reads. */
export interface EndpointEnv {
  /** The endpoint to use, ahead of every default. */
  SRV_SOCKET?: string;
  /** The host's pipe path, used when `SRV_SOCKET` is unset. */
  AGENTMUX_SRV_PIPE_PATH?: string;
  /** Where the per-user socket goes on Unix when set (`$XDG_RUNTIME_DIR/srv/srv.sock`). */
  XDG_RUNTIME_DIR?: string;
  /** Otherwise the socket is `$TMPDIR/srv-<uid>/srv.sock` (`/tmp` when unset). */
  TMPDIR?: string;
}

/** Inputs of {@linkcode resolveEndpoint}; injectable so tests cover every platform. */
export interface EndpointInputs {
  /** The `--socket` flag, if given. */
  flag?: string;
  /** The variables resolution reads. */
  env: EndpointEnv;
  /** The platform. */
  os: typeof Deno.build.os;
  /** The user id (Unix); used in the `<tmpdir>/srv-<uid>` fallback. */
  uid: number | null;
  /** The data directory (Windows pipe names are derived from it). */
  dataDir: string;
}

/** Which rule chose the endpoint, for logs and `--help`. */
export type EndpointSource = "flag" | "SRV_SOCKET" | "AGENTMUX_SRV_PIPE_PATH" | "default";

/**
 * Resolves the endpoint path: `--socket`, then `SRV_SOCKET`, then
 * `AGENTMUX_SRV_PIPE_PATH`, then the platform default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveEndpoint } from "@srv/srv/server";
 *
 * const env = { XDG_RUNTIME_DIR: "/run/user/1000" };
 * assert.deepEqual(resolveEndpoint({ env, os: "linux", uid: 1000, dataDir: "" }), {
 *   path: "/run/user/1000/srv/srv.sock",
 *   source: "default",
 * });
 * ```
 */
export function resolveEndpoint(inputs: EndpointInputs): { path: string; source: EndpointSource } {
  const { flag, env } = inputs;
  if (flag) return { path: flag, source: "flag" };
  if (env.SRV_SOCKET) return { path: env.SRV_SOCKET, source: "SRV_SOCKET" };
  if (env.AGENTMUX_SRV_PIPE_PATH) {
    return { path: env.AGENTMUX_SRV_PIPE_PATH, source: "AGENTMUX_SRV_PIPE_PATH" };
  }
  return { path: defaultEndpoint(inputs), source: "default" };
}

/**
 * The platform default endpoint: `$XDG_RUNTIME_DIR/srv/srv.sock`, else
 * `<tmpdir>/srv-<uid>/srv.sock`; on Windows
 * `\\.\pipe\srv-<hash16 of the data dir>\srv-command`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultEndpoint } from "@srv/srv/server";
 *
 * assert.equal(
 *   defaultEndpoint({ env: {}, os: "darwin", uid: 501, dataDir: "" }),
 *   "/tmp/srv-501/srv.sock",
 * );
 * ```
 */
export function defaultEndpoint(inputs: Omit<EndpointInputs, "flag">): string {
  const { env, os, uid, dataDir } = inputs;
  if (os === "windows") return pipeNameForDataDir(dataDir);
  if (env.XDG_RUNTIME_DIR) return joinPath(env.XDG_RUNTIME_DIR, "srv", "srv.sock");
  const tmp = env.TMPDIR || "/tmp";
  return joinPath(tmp, `srv-${uid ?? "user"}`, "srv.sock");
}

function joinPath(...parts: string[]): string {
  return parts.map((p, i) => (i === 0 ? p.replace(/\/+$/, "") : p)).join("/");
}

/**
 * The Windows default pipe name for a data directory:
 * `\\.\pipe\srv-<hash16>\srv-command`, where hash16 is taken over
 * {@linkcode canonicalForHash} of the directory. A host that launches srv
 * computes the same name from the same directory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pipeNameForDataDir } from "@srv/srv/server";
 *
 * assert.equal(
 *   pipeNameForDataDir("C:\\Users\\Alice\\AppData\\Local\\srv"),
 *   "\\\\.\\pipe\\srv-655e8c0e64fe8d45\\srv-command",
 * );
 * ```
 */
export function pipeNameForDataDir(dataDir: string): string {
  return `\\\\.\\pipe\\srv-${hash16(canonicalForHash(dataDir, "windows"))}\\srv-command`;
}

/**
 * The canonical form of an absolute path that `hash16` is taken over:
 * normalized lexically for the platform (on Windows `/` becomes `\`, `.`
 * and `..` segments and doubled separators go), without a trailing
 * separator, then lowercased. It is deliberately not `realpath`: the data
 * directory may not exist yet on first start, and the name must not change
 * once it does. Relative paths are the caller's to resolve first.
 *
 * @example
 * ```ts
 * import { canonicalForHash } from "./endpoint.ts";
 * canonicalForHash("C:/Users/Alice/AppData/Local/srv/", "windows");
 * // "c:\\users\\alice\\appdata\\local\\srv"
 * ```
 */
export function canonicalForHash(path: string, os: typeof Deno.build.os): string {
  const style = os === "windows" ? win32 : posix;
  let normal = style.normalize(path);
  // A root ("/", "C:\") keeps its separator; anywhere else it goes.
  while (
    normal.length > 1 && normal.endsWith(style.sep) && normal !== style.parse(normal).root
  ) {
    normal = normal.slice(0, -1);
  }
  return normal.toLowerCase();
}

/** The environment variables {@linkcode defaultDataDir} reads. */
export interface DataDirEnv {
  /** Base of the data dir on Linux and the BSDs when set and absolute. */
  XDG_STATE_HOME?: string;
  /** The home directory: the data dir's base on macOS, the fallback elsewhere on Unix. */
  HOME?: string;
  /** Base of the data dir on Windows. */
  LOCALAPPDATA?: string;
  /** The profile directory, the data dir's fallback base on Windows. */
  USERPROFILE?: string;
}

/**
 * The default data directory (the durable store lives there; on Windows the
 * default pipe name is derived from it): `$XDG_STATE_HOME/srv`, else
 * `~/.local/state/srv` on Linux and other Unixes;
 * `~/Library/Application Support/srv` on macOS; `%LOCALAPPDATA%\srv`,
 * else `%USERPROFILE%\AppData\Local\srv` on Windows. Null when the
 * environment names no home at all (the caller asks for `--data-dir`).
 * Pure: the environment is passed in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultDataDir } from "@srv/srv/server";
 *
 * assert.equal(defaultDataDir({ HOME: "/home/alice" }, "linux"), "/home/alice/.local/state/srv");
 * assert.equal(
 *   defaultDataDir({ LOCALAPPDATA: "C:\\Users\\Alice\\AppData\\Local" }, "windows"),
 *   "C:\\Users\\Alice\\AppData\\Local\\srv",
 * );
 * ```
 */
export function defaultDataDir(env: DataDirEnv, os: typeof Deno.build.os): string | null {
  if (os === "windows") {
    if (env.LOCALAPPDATA) return win32.join(env.LOCALAPPDATA, "srv");
    if (env.USERPROFILE) return win32.join(env.USERPROFILE, "AppData", "Local", "srv");
    return null;
  }
  if (os === "darwin") {
    return env.HOME ? posix.join(env.HOME, "Library", "Application Support", "srv") : null;
  }
  // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
  if (env.XDG_STATE_HOME && posix.isAbsolute(env.XDG_STATE_HOME)) {
    return posix.join(env.XDG_STATE_HOME, "srv");
  }
  return env.HOME ? posix.join(env.HOME, ".local", "state", "srv") : null;
}

/** Every variable endpoint and data-dir resolution reads. */
export const RESOLUTION_ENV_KEYS: readonly (keyof EndpointEnv | keyof DataDirEnv)[] = [
  "SRV_SOCKET",
  "AGENTMUX_SRV_PIPE_PATH",
  "XDG_RUNTIME_DIR",
  "TMPDIR",
  "XDG_STATE_HOME",
  "HOME",
  "LOCALAPPDATA",
  "USERPROFILE",
];

/**
 * Reads the variables endpoint and data-dir resolution use from this
 * process's environment, one by one (so `--allow-env` may name just them;
 * `Deno.env.get` also matches names case-insensitively on Windows).
 *
 * @example
 * ```ts ignore
 * import { defaultDataDir, readResolutionEnv, resolveEndpoint } from "./endpoint.ts";
 * const env = readResolutionEnv();
 * resolveEndpoint({ env, os: Deno.build.os, uid: null, dataDir: defaultDataDir(env, Deno.build.os) ?? "" });
 * ```
 */
export function readResolutionEnv(): EndpointEnv & DataDirEnv {
  return Object.fromEntries(RESOLUTION_ENV_KEYS.map((k) => [k, Deno.env.get(k)]));
}

/**
 * True for a Windows named pipe path (`\\.\pipe\NAME` or
 * `\\?\pipe\NAME`, backslashes only, the prefix in any case): the only
 * kind of endpoint srv can listen on under Windows.
 *
 * @example
 * ```ts
 * import { isPipeName } from "./endpoint.ts";
 * isPipeName("\\\\.\\pipe\\srv-test"); // true
 * isPipeName("/tmp/srv.sock"); // false
 * ```
 */
export function isPipeName(path: string): boolean {
  return /^\\\\[.?]\\pipe\\[^\\]/i.test(path);
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

/**
 * `hash16`: the 64-bit FNV-1a hash of the UTF-8 bytes of `text`, as 16
 * lowercase hex digits (docs/PROTOCOL.md §1). Callers lowercase the canonical
 * path first ({@linkcode canonicalForHash}).
 *
 * @example
 * ```ts
 * import { hash16 } from "./endpoint.ts";
 * hash16(""); // "cbf29ce484222325"
 * hash16("a"); // "af63dc4c8601ec8c"
 * ```
 */
export function hash16(text: string): string {
  let hash = FNV_OFFSET;
  for (const byte of new TextEncoder().encode(text)) {
    hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK64;
  }
  return hash.toString(16).padStart(16, "0");
}
