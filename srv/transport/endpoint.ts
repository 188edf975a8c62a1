/**
 * Where srv listens (PROTOCOL.md §1): endpoint resolution from flag and
 * environment, the data directory default, the Windows pipe name's
 * `hash16`, and the Unix-side checks that make the socket private and the
 * server the only one on it.
 *
 * @module
 */

import { posix, win32 } from "node:path";
import { lstatOrNull, tryLockFile } from "../server/lock_file.ts";
import { checkAncestors } from "../server/trusted_path.ts";

/** The environment variables endpoint resolution reads. */
export interface EndpointEnv {
  SRV_SOCKET?: string;
  AGENTMUX_SRV_PIPE_PATH?: string;
  XDG_RUNTIME_DIR?: string;
  TMPDIR?: string;
}

/** Inputs of {@linkcode resolveEndpoint}; injectable so tests cover every platform. */
export interface EndpointInputs {
  /** The `--socket` flag, if given. */
  flag?: string;
  env: EndpointEnv;
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
 * import { resolveEndpoint } from "./endpoint.ts";
 * resolveEndpoint({ env: { XDG_RUNTIME_DIR: "/run/user/1000" }, os: "linux", uid: 1000, dataDir: "" });
 * // { path: "/run/user/1000/srv/srv.sock", source: "default" }
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
 * import { defaultEndpoint } from "./endpoint.ts";
 * defaultEndpoint({ env: {}, os: "darwin", uid: 501, dataDir: "" }); // "/tmp/srv-501/srv.sock"
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
 * import { pipeNameForDataDir } from "./endpoint.ts";
 * pipeNameForDataDir("C:\\Users\\Alice\\AppData\\Local\\srv");
 * // "\\\\.\\pipe\\srv-655e8c0e64fe8d45\\srv-command"
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
  XDG_STATE_HOME?: string;
  HOME?: string;
  LOCALAPPDATA?: string;
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
 * import { defaultDataDir } from "./endpoint.ts";
 * defaultDataDir({ HOME: "/home/alice" }, "linux"); // "/home/alice/.local/state/srv"
 * defaultDataDir({ LOCALAPPDATA: "C:\\Users\\Alice\\AppData\\Local" }, "windows");
 * // "C:\\Users\\Alice\\AppData\\Local\\srv"
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
 * lowercase hex digits (PROTOCOL.md §1). Callers lowercase the canonical
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

/** Why the endpoint cannot be used; `code` picks the exit code. */
export class EndpointError extends Error {
  readonly code: "in_use" | "unsafe";
  constructor(code: "in_use" | "unsafe", message: string) {
    super(message);
    this.name = "EndpointError";
    this.code = code;
  }
}

/** What {@linkcode claimSocketPath} hands back: release it on shutdown. */
export interface SocketClaim {
  /** Removes the socket file and the lock, if still ours. */
  release(): void;
  /** True when a stale socket from a dead srv was removed. */
  readonly replacedStale: boolean;
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

/**
 * Makes `dir` a safe home for the socket: creates it 0700 when missing and
 * refuses a symlink, a non-directory, a directory another user owns, or one
 * others may write to without the sticky bit; and the same for every
 * directory on the way to it (see {@linkcode checkAncestors}), since whoever
 * may swap a parent may swap `dir` with it.
 *
 * @example
 * ```ts ignore
 * import { ensurePrivateDir } from "./endpoint.ts";
 * ensurePrivateDir("/run/user/1000/srv", 1000); // created 0700, or checked
 * ```
 */
export function ensurePrivateDir(dir: string, uid: number | null): void {
  const problem = uid === null ? null : checkAncestors(posix.dirname(posix.resolve(dir)), uid);
  if (problem !== null) {
    throw new EndpointError("unsafe", `refusing to use the socket directory ${dir}: ${problem}`);
  }
  let info = lstatOrNull(dir);
  if (info === null) {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // mkdir's mode passes through the umask; make sure it is exactly 0700.
    Deno.chmodSync(dir, 0o700);
    info = Deno.lstatSync(dir);
  }
  if (info.isSymlink) {
    throw new EndpointError("unsafe", `socket directory ${dir} is a symlink; refusing to use it`);
  }
  if (!info.isDirectory) {
    throw new EndpointError("unsafe", `socket directory ${dir} is not a directory`);
  }
  if (uid !== null && info.uid !== null && info.uid !== uid) {
    throw new EndpointError(
      "unsafe",
      `socket directory ${dir} is owned by uid ${info.uid}, not by this user (uid ${uid}); refusing to use it`,
    );
  }
  // Whoever may write to the directory may rename another socket over ours
  // and impersonate srv; the sticky bit (as on /tmp) forbids exactly that.
  const mode = info.mode;
  if (mode !== null && (mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
    throw new EndpointError(
      "unsafe",
      `socket directory ${dir} is writable by other users (mode ${
        (mode & 0o7777).toString(8).padStart(4, "0")
      }); refusing to use it (chmod go-w ${dir}, or choose another --socket)`,
    );
  }
}

async function isLive(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.NotFound) {
      return false;
    }
    throw e;
  }
}

/**
 * Claims a Unix socket path for this server (PROTOCOL.md §1): a private
 * directory, a lock file beside the socket so two servers starting at once
 * cannot both win, a live server detected by connecting, a stale socket
 * (connect refused, `lstat` says socket) removed, and any other file at the
 * path left alone with an error.
 *
 * @example
 * ```ts ignore
 * import { claimSocketPath } from "./endpoint.ts";
 * const claim = await claimSocketPath("/run/user/1000/srv/srv.sock", 1000);
 * // ... listen, serve ...
 * claim.release();
 * ```
 */
export async function claimSocketPath(path: string, uid: number | null): Promise<SocketClaim> {
  ensurePrivateDir(dirname(path), uid);
  const lockPath = `${path}.lock`;
  const lock = await tryLockFile(lockPath);
  if (lock === null) {
    throw new EndpointError(
      "in_use",
      `another srv is already running at ${path} (lock ${lockPath} is held)`,
    );
  }
  try {
    const replacedStale = await clearStaleSocket(path);
    return {
      replacedStale,
      release() {
        const info = lstatOrNull(path);
        if (info?.isSocket) Deno.removeSync(path);
        try {
          Deno.removeSync(lockPath);
        } catch {
          // Someone removed it already; the lock itself dies with the fd.
        }
        lock.close();
      },
    };
  } catch (e) {
    lock.close();
    throw e;
  }
}

async function clearStaleSocket(path: string): Promise<boolean> {
  const info = lstatOrNull(path);
  if (info === null) return false;
  if (!info.isSocket) {
    throw new EndpointError(
      "unsafe",
      `${path} exists and is not a socket; refusing to remove it (move it away or choose another --socket)`,
    );
  }
  if (await isLive(path)) {
    throw new EndpointError("in_use", `another srv is already running at ${path}`);
  }
  Deno.removeSync(path);
  return true;
}
