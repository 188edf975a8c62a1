/**
 * The data dir's safety rules (docs/PROTOCOL.md §10 "Files"), kept apart from the
 * store's format: a private directory nobody else can swap or write, files
 * only the user can read, one srv at a time (waiting a little for one that is
 * shutting down), and a store that can really be written before srv says it
 * is ready. Every refusal names the path and what to do about it.
 *
 * @module
 */

import { posix } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { lstatOrNull, tryLockFile } from "./lock_file.ts";
import { checkAncestors, octalMode } from "./trusted_path.ts";
import { message, pragmaNumber } from "./_store_schema.ts";

/**
 * The data dir cannot be used. `unsafe` (exit 4, like the socket's
 * directory): another user could read, write or swap it. Otherwise (exit 5)
 * the store cannot be used as it is.
 */
export class DataDirError extends Error {
  readonly path: string;
  readonly unsafe: boolean;
  constructor(path: string, message: string, options?: ErrorOptions & { unsafe?: boolean }) {
    super(message, options);
    this.name = "DataDirError";
    this.path = path;
    this.unsafe = options?.unsafe ?? false;
  }
}

/**
 * The wait for the data dir's lock was given up because `signal` was
 * aborted (srv got a stop signal while waiting): not a store failure, srv
 * simply stops before it served anything.
 */
export class LockWaitAborted extends DataDirError {
  constructor(lockPath: string, reason: unknown) {
    super(lockPath, `stopped waiting for the data dir lock ${lockPath}: ${String(reason)}`);
    this.name = "LockWaitAborted";
  }
}

/** Default of `--lock-wait`: how long a new srv waits for one that is shutting down. */
export const DEFAULT_LOCK_WAIT_MS = 10_000;

/** How often a waiting srv tries the lock again. */
const LOCK_POLL_MS = 25;

/** Suffixes SQLite adds to the database file's name for its side files. */
const SIDE_FILES = ["-wal", "-shm", "-journal"] as const;

/** Mode of every file srv keeps in the data dir. */
const FILE_MODE = 0o600;

function currentUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

const POSIX = Deno.build.os !== "windows";

/**
 * Makes `dir` a safe data dir: every directory on the way to it trusted
 * ({@linkcode checkAncestors}), created 0700 when missing, owned by this
 * user and not writable by group or others (not even with the sticky bit:
 * whoever may create files there could plant a WAL or a lock of their own).
 * A directory made beforehand with a wider read mode (0755) is accepted:
 * the files srv keeps in it are 0600. Throws {@linkcode DataDirError}.
 *
 * @example
 * ```ts ignore
 * import { prepareDataDir } from "./data_dir.ts";
 * prepareDataDir("/home/alice/.local/state/srv");
 * ```
 */
export function prepareDataDir(dir: string, uid: number | null = currentUid()): void {
  const unsafe = (why: string) =>
    new DataDirError(dir, `refusing to use the data dir ${dir}: ${why}`, { unsafe: true });
  if (POSIX) {
    const problem = checkAncestors(posix.dirname(dir), uid);
    if (problem !== null) throw unsafe(problem);
  }
  let info = lstatOrNull(dir);
  if (info === null) {
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
      // mkdir's mode passes through the umask; make sure it is exactly 0700.
      if (POSIX) Deno.chmodSync(dir, 0o700);
    } catch (e) {
      throw new DataDirError(dir, `cannot create the data dir ${dir}: ${describeFsError(e)}`, {
        cause: e,
      });
    }
    info = Deno.lstatSync(dir);
  }
  if (info.isSymlink) {
    // Followed on purpose (a data dir may live on another disk); the target
    // and the directories leading to it must be as safe as the link's.
    let real: string;
    try {
      real = Deno.realPathSync(dir);
      info = Deno.statSync(real);
    } catch (e) {
      throw new DataDirError(dir, `cannot use the data dir ${dir}: ${describeFsError(e)}`, {
        cause: e,
      });
    }
    if (POSIX) {
      const problem = checkAncestors(posix.dirname(real), uid);
      if (problem !== null) throw unsafe(problem);
    }
  }
  if (!info.isDirectory) throw new DataDirError(dir, `the data dir ${dir} is not a directory`);
  if (!POSIX) return;
  if (uid !== null && info.uid !== null && info.uid !== uid) {
    throw unsafe(
      `it is owned by uid ${info.uid}, not by this user (uid ${uid}) (chown it, or choose another --data-dir)`,
    );
  }
  const mode = info.mode;
  if (mode !== null && (mode & 0o022) !== 0) {
    throw unsafe(
      `other users may write to it (mode ${
        octalMode(mode)
      }) (chmod go-w ${dir}, or choose another --data-dir)`,
    );
  }
}

/**
 * Takes the data dir's lock file, waiting up to `waitMs` for another srv to
 * let go of it (one that is shutting down releases it as soon as its store
 * is closed). `onWait` runs once, when the wait starts. The lock file is
 * made 0600 whatever its previous mode. Throws {@linkcode DataDirError}
 * when the lock stays held, and {@linkcode LockWaitAborted} as soon as
 * `signal` is aborted while waiting.
 *
 * @example
 * ```ts ignore
 * import { lockDataDir } from "./data_dir.ts";
 * const lock = await lockDataDir("/tmp/data/srv.lock", 10_000);
 * lock.close();
 * ```
 */
export async function lockDataDir(
  lockPath: string,
  waitMs: number,
  onWait: (lockPath: string, waitMs: number) => void = () => {},
  signal?: AbortSignal,
): Promise<Deno.FsFile> {
  const deadline = performance.now() + waitMs;
  let waiting = false;
  while (true) {
    if (signal?.aborted) throw new LockWaitAborted(lockPath, signal.reason);
    let lock: Deno.FsFile | null;
    try {
      lock = await tryLockFile(lockPath);
    } catch (e) {
      throw new DataDirError(lockPath, `cannot lock ${lockPath}: ${describeFsError(e)}`, {
        cause: e,
      });
    }
    if (lock !== null) {
      try {
        tightenMode(lockPath);
      } catch (e) {
        lock.close();
        throw e;
      }
      return lock;
    }
    const left = deadline - performance.now();
    if (left <= 0) break;
    if (!waiting) {
      waiting = true;
      onWait(lockPath, waitMs);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(LOCK_POLL_MS, left));
      signal?.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
    });
  }
  const dir = lockPath.slice(0, Math.max(lockPath.lastIndexOf("/"), lockPath.lastIndexOf("\\")));
  const waited = waitMs > 0 ? ` after waiting ${waitMs / 1000} s (--lock-wait)` : "";
  throw new DataDirError(
    lockPath,
    `another srv is using the data dir ${dir} (lock ${lockPath} is held${waited})`,
  );
}

/** chmod 0600 when a file srv keeps is more open (or less) than that. */
function tightenMode(path: string): void {
  if (!POSIX) return;
  const info = lstatOrNull(path);
  if (info === null || !info.isFile || info.mode === null) return;
  if ((info.mode & 0o777) === FILE_MODE) return;
  try {
    Deno.chmodSync(path, FILE_MODE);
  } catch (e) {
    throw new DataDirError(
      path,
      `cannot make ${path} private (mode ${octalMode(info.mode)}, owner uid ${info.uid}): ${
        describeFsError(e)
      }`,
      { cause: e },
    );
  }
}

/**
 * Readies the database file before SQLite opens it:
 *
 * - a missing one is created whole, under a temporary name, 0600, with its
 *   SQLite header written, then renamed into place, so a crash never leaves
 *   an empty `srv.db` behind, and SQLite's WAL (which takes the database's
 *   mode) is 0600 from birth too;
 * - an existing empty one (0 bytes) is refused: srv never leaves one, so it
 *   was truncated or replaced, and starting fresh over it would silently
 *   lose the history;
 * - one its owner may not write (mode 0444) is refused;
 * - the database and its side files (`-wal`, `-shm`, `-journal`) are made
 *   0600 when they are not.
 *
 * Returns true when the store was created now. Throws {@linkcode DataDirError}.
 *
 * @example
 * ```ts ignore
 * import { prepareStoreFile } from "./data_dir.ts";
 * prepareStoreFile("/tmp/data/srv.db"); // true the first time
 * ```
 */
export function prepareStoreFile(path: string): boolean {
  const info = lstatOrNull(path);
  if (info === null) {
    createStoreFile(path);
    return true;
  }
  // Anything else (a directory, a link) is SQLite's to refuse, with its reason.
  if (!info.isFile) return false;
  if (info.size === 0) {
    throw new DataDirError(
      path,
      `the store ${path} is empty (0 bytes). srv never leaves an empty store, so it was truncated or replaced; ` +
        `srv will not start fresh over it. To start with an empty store, move it away ` +
        `(mv ${path} ${path}.empty) and start srv again`,
    );
  }
  if (POSIX && info.mode !== null && (info.mode & 0o200) === 0) {
    throw new DataDirError(
      path,
      `the store ${path} is read-only (mode ${
        octalMode(info.mode)
      }); srv writes every event to it (chmod 600 ${path})`,
    );
  }
  tightenMode(path);
  for (const suffix of SIDE_FILES) tightenMode(path + suffix);
  return false;
}

function createStoreFile(path: string): void {
  const fresh = `${path}.new`;
  try {
    // Left by a srv that died while creating it; we hold the lock.
    for (const suffix of ["", ...SIDE_FILES]) {
      if (lstatOrNull(fresh + suffix) !== null) Deno.removeSync(fresh + suffix);
    }
    Deno.writeFileSync(fresh, new Uint8Array(), { createNew: true, mode: FILE_MODE });
    if (POSIX) Deno.chmodSync(fresh, FILE_MODE);
    const db = new DatabaseSync(fresh);
    try {
      // Writes the header (page 1): from here on the file is a valid,
      // empty SQLite database.
      db.exec("PRAGMA journal_mode = WAL");
    } finally {
      db.close();
    }
    Deno.renameSync(fresh, path);
  } catch (e) {
    throw new DataDirError(path, `cannot create the store ${path}: ${describeFailure(path, e)}`, {
      cause: e,
    });
  }
}

/**
 * Free pages past which the probe does not check that the store can grow:
 * the next commits will use those first.
 */
const PROBE_GROWTH_MAX_FREE_PAGES = 16;

/**
 * Proves the open store can be written, before srv says it is ready, with a
 * real write transaction: the header's `user_version` rewritten to its own
 * value and committed, which fails as a later commit would on a read-only
 * file, a read-only file system or a failing disk. Inside it, and rolled
 * back, one page more than the free list holds is allocated, which fails
 * when the store cannot grow at all (a full disk, the page cap). The store
 * is left as it was. Throws {@linkcode DataDirError} with the real cause.
 *
 * @example
 * ```ts ignore
 * import { probeWritable } from "./data_dir.ts";
 * probeWritable(db, "/tmp/data/srv.db");
 * ```
 */
export function probeWritable(db: DatabaseSync, path: string, maxPages?: number): void {
  const pragma = (name: string) => pragmaNumber(db, name);
  try {
    const free = pragma("freelist_count");
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(`PRAGMA user_version = ${pragma("user_version")}`);
      if (free <= PROBE_GROWTH_MAX_FREE_PAGES) {
        db.exec("SAVEPOINT srv_grow");
        db.exec("CREATE TABLE srv_write_probe (x)");
        db.prepare("INSERT INTO srv_write_probe VALUES (zeroblob(?))")
          .run((free + 1) * pragma("page_size"));
        db.exec("ROLLBACK TO srv_grow; RELEASE srv_grow");
      }
      db.exec("COMMIT");
    } catch (e) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw e;
    }
  } catch (e) {
    throw new DataDirError(
      path,
      `the store ${path} cannot be written: ${describeFailure(path, e, maxPages)}`,
      { cause: e },
    );
  }
}

/**
 * The real cause of a failure on the store at `path`, and what to do about
 * it. SQLite reports a full disk, a read-only file, a read-only file system
 * and a missing permission in a few generic words; this tells them apart by
 * asking the file system, so a full disk is never called "not an SQLite
 * database".
 *
 * @example
 * ```ts ignore
 * import { describeFailure } from "./data_dir.ts";
 * describeFailure("/tmp/data/srv.db", new Error("database or disk is full"));
 * // "the disk holding /tmp/data/srv.db is full: free some space, then start srv again"
 * ```
 */
export function describeFailure(path: string, e: unknown, maxPages?: number): string {
  const text = message(e);
  if (/database or disk is full|No space left|ENOSPC|os error 28/i.test(text)) {
    return maxPages !== undefined
      ? `${text}: the store reached its page cap (SRV_STORE_MAX_PAGES=${maxPages})`
      : `the disk holding ${path} is full (${text}): free some space, then start srv again`;
  }
  // SQLite reports a full tmpfs as an I/O error (its shared-memory file
  // cannot grow), and any missing permission as "unable to open".
  if (
    /readonly|read-only|unable to open|disk I\/O error|permission denied|EACCES|EPERM|EROFS/i.test(
      text,
    )
  ) {
    const why = whyNotWritable(path);
    if (why !== null) return `${why} (${text})`;
  }
  if (/file is not a database/i.test(text)) {
    return `${path} is not an SQLite database (${text})`;
  }
  if (/disk I\/O error/i.test(text)) {
    return `${text}: the device holding ${path} failed a read or write; check the disk (dmesg) and its free space`;
  }
  return text;
}

/**
 * Asks the file system why `path` (or a new file beside it) cannot be
 * written: a read-only mount, a missing permission, a full disk. Null when
 * it can be.
 */
function whyNotWritable(path: string): string | null {
  const dir = path.slice(0, Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"))) || "/";
  const attempts: [string, () => void][] = [
    [path, () => Deno.openSync(path, { write: true }).close()],
    [dir, () => {
      const probe = `${dir}/.srv-write-probe-${Deno.pid}`;
      Deno.writeFileSync(probe, new Uint8Array(1), { mode: FILE_MODE });
      Deno.removeSync(probe);
    }],
  ];
  for (const [what, attempt] of attempts) {
    try {
      attempt();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue;
      return describeFsError(e, what);
    }
  }
  return null;
}

/**
 * A file-system error in words that say what to fix: read-only file system,
 * no space, permission (with the owner and mode), rather than an errno name.
 *
 * @example
 * ```ts ignore
 * import { describeFsError } from "./data_dir.ts";
 * describeFsError(new Deno.errors.PermissionDenied("Permission denied (os error 13)"), "/x");
 * ```
 */
export function describeFsError(e: unknown, path?: string): string {
  const text = message(e);
  const code = (e as { code?: string } | null)?.code;
  const where = path === undefined ? "" : `${path}: `;
  if (code === "EROFS" || /os error 30\b|read-only file system/i.test(text)) {
    return `${where}the file system is mounted read-only (${text}); remount it read-write or choose another --data-dir`;
  }
  if (code === "ENOSPC" || /os error 28\b|no space left/i.test(text)) {
    return `${where}the disk is full (${text}); free some space`;
  }
  if (e instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
    const info = path === undefined ? null : lstatOrNull(path);
    const owner = info?.uid != null && info.mode != null
      ? ` (owner uid ${info.uid}, mode ${octalMode(info.mode)}; srv runs as uid ${currentUid()})`
      : "";
    return `${where}permission denied${owner}: ${text}`;
  }
  return `${where}${text}`;
}
