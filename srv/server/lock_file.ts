/**
 * Advisory lock files: how srv makes sure one server owns a socket path or a
 * data dir. The lock is held for the life of the open file; the OS drops it
 * when the process dies, even on SIGKILL, so a crash never leaves a stale
 * lock behind.
 *
 * @module
 */

/**
 * `lstat` that says null for a missing path instead of throwing: what a
 * lock, a socket or a store path is, without following a symlink.
 *
 * @example
 * ```ts
 * import { lstatOrNull } from "./lock_file.ts";
 * lstatOrNull("/no/such/path"); // null
 * ```
 */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Creates `path` if needed and takes an exclusive lock on it without
 * waiting. Returns the open file (close it to unlock), or null when another
 * process holds the lock.
 *
 * @example
 * ```ts
 * import { tryLockFile } from "./lock_file.ts";
 * const path = await Deno.makeTempFile();
 * const lock = await tryLockFile(path);
 * const second = await tryLockFile(path); // null: already held
 * lock?.close();
 * await Deno.remove(path);
 * ```
 */
export async function tryLockFile(path: string): Promise<Deno.FsFile | null> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const file = await Deno.open(path, { create: true, read: true, write: true, mode: 0o600 });
    if (!(await file.tryLock(true))) {
      file.close();
      return null;
    }
    // The previous owner may have removed the file between our open and our
    // lock; then we would hold a lock nobody else can see. Check and retry.
    const held = await file.stat();
    const current = lstatOrNull(path);
    if (current !== null && current.ino === held.ino && current.dev === held.dev) return file;
    file.close();
  }
  throw new Error(`could not lock ${path}: it keeps being replaced`);
}
