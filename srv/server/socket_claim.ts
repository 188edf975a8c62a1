/**
 * The Unix-side checks that make the socket private and the server the only
 * one on it: a 0700 directory the user owns, a lock beside the socket, and a
 * stale socket from a dead srv replaced.
 *
 * @module
 */

import { posix } from "node:path";
import { EndpointError } from "../transport/transport.ts";
import { lstatOrNull, tryLockFile } from "./lock_file.ts";
import { checkAncestors } from "./trusted_path.ts";

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
 * import { ensurePrivateDir } from "./socket_claim.ts";
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
 * Claims a Unix socket path for this server (docs/PROTOCOL.md §1): a private
 * directory, a lock file beside the socket so two servers starting at once
 * cannot both win, a live server detected by connecting, a stale socket
 * (connect refused, `lstat` says socket) removed, and any other file at the
 * path left alone with an error.
 *
 * @example
 * ```ts ignore
 * import { claimSocketPath } from "./socket_claim.ts";
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
      `${path} exists and is not a socket (it is ${
        info.isFile ? "a regular file" : info.isDirectory ? "a directory" : "something else"
      }); refusing to remove it (move it away or choose another --socket)`,
    );
  }
  if (await isLive(path)) {
    throw new EndpointError("in_use", `another srv is already running at ${path}`);
  }
  Deno.removeSync(path);
  return true;
}
