/**
 * Whether a path can be trusted not to be swapped under srv by another
 * local user: the rule OpenSSH's `StrictModes` applies to `~/.ssh`. Whoever
 * may write to a directory on the way to the data dir or the socket dir can
 * rename it away between two runs and put their own in its place; srv would
 * then serve their data, or they would impersonate srv. So every directory
 * on the way must be owned by root or by the user, and not writable by group
 * or others unless it is sticky (as `/tmp` is: there nobody may rename
 * another user's entry).
 *
 * Pure apart from the injected file system, so tests can stage "another
 * user" without being root.
 *
 * @module
 */

import { lstatOrNull } from "./lock_file.ts";

/** What {@linkcode checkAncestors} needs to know of one path (an `lstat`). */
export interface PathInfo {
  readonly isDirectory: boolean;
  readonly isSymlink: boolean;
  /** Owner; null where the platform has none (Windows). */
  readonly uid: number | null;
  /** Permission bits including sticky (`0o1000`); null on Windows. */
  readonly mode: number | null;
}

/** The file system as {@linkcode checkAncestors} sees it; injectable for tests. */
export interface TrustFs {
  /** `lstat`: null for a missing path. */
  lstat(path: string): PathInfo | null;
  /** The target of a symlink, as stored. */
  readLink(path: string): string;
}

/** The real file system: `lstat` that says null for a missing path, and `readlink`. */
export const REAL_FS: TrustFs = {
  lstat: lstatOrNull,
  readLink: Deno.readLinkSync,
};

/** At most this many symlinks are followed, like the kernel's `MAXSYMLINKS`. */
const MAX_SYMLINKS = 40;

/**
 * A mode as four octal digits, for messages.
 *
 * @example
 * ```ts
 * import { octalMode } from "./trusted_path.ts";
 * octalMode(0o41777); // "1777"
 * ```
 */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * The reason a directory srv passes through is unsafe, or null when it is
 * fine: owned by root or `uid`, and not writable by group or others unless
 * sticky.
 */
function untrustedDirectory(dir: string, info: PathInfo, uid: number): string | null {
  if (!info.isDirectory) return `${dir} is not a directory`;
  if (info.uid !== null && info.uid !== 0 && info.uid !== uid) {
    return `${dir} is owned by uid ${info.uid}, not by root or this user (uid ${uid}), who could swap what it holds`;
  }
  const mode = info.mode;
  if (mode !== null && (mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
    return `${dir} is writable by other users (mode ${
      octalMode(mode)
    }) without the sticky bit, so they could swap what it holds (chmod go-w ${dir})`;
  }
  return null;
}

/**
 * Checks every directory that resolving the absolute path `path` passes
 * through, `path` itself included, the way the kernel resolves it: each
 * component in turn, each symlink's target followed (and the directory that
 * holds the symlink checked too, since whoever may write there may re-point
 * it). Stops at the first missing component: srv creates the rest itself,
 * private. Returns the reason the first untrusted directory is unsafe, or
 * null when all of them are fine. `uid` null (Windows) checks nothing.
 *
 * @example
 * ```ts
 * import { checkAncestors } from "./trusted_path.ts";
 * checkAncestors("/tmp", 1000); // null: root owns /tmp, and it is sticky
 * ```
 */
export function checkAncestors(
  path: string,
  uid: number | null,
  fs: TrustFs = REAL_FS,
): string | null {
  if (uid === null || !path.startsWith("/")) return null;
  const root = fs.lstat("/");
  if (root !== null) {
    const problem = untrustedDirectory("/", root, uid);
    if (problem !== null) return problem;
  }
  const queue = path.split("/").filter((part) => part !== "");
  let dir = "/";
  let symlinks = 0;
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      // The parent was checked on the way down (or is an ancestor of a
      // symlink target, checked when that target was resolved).
      dir = parentOf(dir);
      continue;
    }
    const next = dir === "/" ? `/${name}` : `${dir}/${name}`;
    const info = fs.lstat(next);
    if (info === null) return null;
    if (info.isSymlink) {
      if (++symlinks > MAX_SYMLINKS) return `${path}: too many levels of symbolic links`;
      const target = fs.readLink(next);
      if (target.startsWith("/")) dir = "/";
      queue.unshift(...target.split("/").filter((part) => part !== ""));
      continue;
    }
    const problem = untrustedDirectory(next, info, uid);
    if (problem !== null) return problem;
    dir = next;
  }
  return null;
}

function parentOf(dir: string): string {
  const i = dir.lastIndexOf("/");
  return i <= 0 ? "/" : dir.slice(0, i);
}
