/**
 * Durable state (PROTOCOL.md §8): an embedded SQLite event store behind the
 * event log's seam. Every logged event and the highest issued version are
 * committed before the server broadcasts them; a periodic checkpoint of the
 * tree bounds what a restart replays; `get_events` reaches back past the
 * memory ring as far as the store's retention.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  DEFAULT_RING_CAPACITY,
  type EventHistory,
  EventLog,
  type LogEntries,
  type LogEntry,
} from "./event_log.ts";
import { utf8Length } from "./framing.ts";
import {
  DataDirError,
  describeFailure,
  lockDataDir,
  prepareDataDir,
  prepareStoreFile,
  probeWritable,
} from "./data_dir.ts";
import { sinceBound, truncatedAfter } from "./_since.ts";
import type { LogStats, U64 } from "./protocol.ts";
import { evolveOwned, type ReducerEvent } from "./reducer.ts";
import { measure } from "./limits.ts";
import { type Block, initialState, type State, type Tab, type Workspace } from "./state.ts";

/** `PRAGMA application_id` of an srv store: "srv1" in ASCII. */
export const STORE_APPLICATION_ID = 0x73727631;
/** The schema version this srv writes; older stores are migrated forward. */
export const STORE_SCHEMA_VERSION = 1;
/** Default of `--retain-events`: events kept on disk for `get_events`. */
export const DEFAULT_RETAIN_EVENTS = 100_000;
/** Logged events between two checkpoints of the tree. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;
/** File names inside the data dir. */
export const STORE_FILE = "srv.db";
/** The lock that keeps a second srv off the same data dir. */
export const STORE_LOCK_FILE = "srv.lock";

/** The store cannot be used; the message names the path and the reason. */
export class StoreError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
    this.path = path;
  }
}

/** How to open a store. */
export interface StoreOptions {
  /** Directory holding `srv.db` and `srv.lock`; created 0700 when missing. */
  readonly dataDir: string;
  /** Events kept for `get_events` (never fewer than those after the latest checkpoint). */
  readonly retainEvents?: number;
  /** Logged events between checkpoints (at least; a large tree stretches it to its size). */
  readonly checkpointEvery?: number;
  /** `normal` survives a crash of srv; `full` also survives power loss (fsync per commit). */
  readonly sync?: "normal" | "full";
  /** Size of the memory ring in front of the store. */
  readonly ringCapacity?: number;
  /** Caps the database size in pages (diagnostics: makes "disk full" reproducible). */
  readonly maxPages?: number;
  /** How long to wait for another srv (one shutting down) to release the data dir; default 0. */
  readonly lockWaitMs?: number;
  /** Called once when that wait starts (for the log). */
  readonly onLockWait?: (lockPath: string, waitMs: number) => void;
}

/** What opening the store found. */
export interface StoreRecovery {
  /** The state rebuilt from the latest checkpoint and the events after it. */
  readonly state: State;
  /** Version of the checkpoint used (0 when none). */
  readonly checkpointVersion: number;
  /** Events replayed on top of the checkpoint. */
  readonly replayed: number;
  /** Events on disk. */
  readonly stored: number;
}

interface Migration {
  readonly to: number;
  readonly sql: string;
}

/** Forward-only migrations; `to` is the schema version after each. */
const MIGRATIONS: readonly Migration[] = [
  {
    to: 1,
    // One row per committed turn: a pipelined client costs one INSERT per
    // batch, not per event. `lines` holds the events' JSON, one per line,
    // oldest first, exactly as broadcast.
    sql: `
      CREATE TABLE batches (
        first_version INTEGER PRIMARY KEY,
        last_version INTEGER NOT NULL,
        events INTEGER NOT NULL,
        lines TEXT NOT NULL
      ) STRICT;
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
      CREATE TABLE checkpoints (
        version INTEGER PRIMARY KEY, state TEXT NOT NULL, created_at TEXT NOT NULL
      ) STRICT;
      INSERT INTO meta (key, value) VALUES ('highest_version', 0);
    `,
  },
];

/** The version of a stored event line: the encoder always writes it last. */
function versionOfLine(line: string): number {
  return Number(line.slice(line.lastIndexOf('"version":') + 10, -1));
}

/** The entries of stored batches with version above `since`, oldest first. */
function entriesOf(rows: Iterable<{ lines: string }>, since: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (const row of rows) {
    for (const json of row.lines.split("\n")) {
      const version = versionOfLine(json);
      if (version > since) out.push({ version, json });
    }
  }
  return out;
}

/** The tree as a checkpoint stores it (JSON). */
interface CheckpointData {
  eventVersion: number;
  nextClientId: number;
  workspaces: Workspace[];
  tabs: Tab[];
  blocks: Block[];
}

function toCheckpoint(state: State): string {
  const data: CheckpointData = {
    eventVersion: state.eventVersion,
    nextClientId: state.nextClientId,
    workspaces: [...state.workspaces.values()],
    tabs: [...state.tabs.values()],
    blocks: [...state.blocks.values()],
  };
  return JSON.stringify(data);
}

function fromCheckpoint(json: string): State {
  const data = JSON.parse(json) as CheckpointData;
  const workspaces = new Map(data.workspaces.map((w) => [w.id, w]));
  const tabs = new Map(data.tabs.map((t) => [t.id, t]));
  const blocks = new Map(data.blocks.map((b) => [b.id, b]));
  return {
    ...initialState(),
    eventVersion: data.eventVersion,
    nextClientId: data.nextClientId,
    workspaces,
    tabs,
    blocks,
    // Not stored: recomputed, so a checkpoint of any age gives the same total.
    contentBytes: measure({ workspaces, tabs, blocks }),
  };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function joinPath(dir: string, file: string): string {
  const sep = Deno.build.os === "windows" ? "\\" : "/";
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + file : dir + sep + file;
}

/**
 * The event history of a durable srv: the memory ring in front, SQLite
 * behind. Open it with {@linkcode DurableEventLog.open}, hand it to the
 * server as `history`, and {@linkcode DurableEventLog.close} it on shutdown.
 *
 * @example
 * ```ts ignore
 * import { DurableEventLog } from "./store.ts";
 * import { Server } from "./server.ts";
 * const { log, recovery } = await DurableEventLog.open({ dataDir: "/tmp/srv-data" });
 * const server = new Server({ identity, history: log, initialState: recovery.state, storePath: log.path });
 * // ... serve, then on shutdown:
 * log.close(server.state);
 * ```
 */
export class DurableEventLog implements EventHistory {
  /** Path of the SQLite database file. */
  readonly path: string;
  readonly retainEvents: number;
  readonly checkpointEvery: number;
  readonly #db: DatabaseSync;
  readonly #lock: Deno.FsFile;
  readonly #ring: EventLog;
  #pending: LogEntry[] = [];
  #committedVersion: number;
  #sinceCheckpoint: number;
  #latestCheckpoint: number;
  #oldest: number | null;
  #newest: number | null;
  #count: number;
  #closed = false;
  readonly #insertBatch: StatementSync;
  readonly #setHighest: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #selectSince: StatementSync;
  /** Batches older than a version, newest first (prepared on first use). */
  #selectBefore: StatementSync | null = null;

  private constructor(
    path: string,
    db: DatabaseSync,
    lock: Deno.FsFile,
    options: StoreOptions,
    found: {
      highest: number;
      checkpoint: number;
      recovery: StoreRecovery;
      oldest: number | null;
      newest: number | null;
      count: number;
    },
  ) {
    this.path = path;
    this.#db = db;
    this.#lock = lock;
    this.#ring = new EventLog(options.ringCapacity ?? DEFAULT_RING_CAPACITY);
    // The ring answers for its newest events anyway; retaining fewer on disk
    // would make `truncated` contradict what get_events returns.
    this.retainEvents = Math.max(
      options.retainEvents ?? DEFAULT_RETAIN_EVENTS,
      this.#ring.capacity,
    );
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    this.#committedVersion = found.highest;
    this.#latestCheckpoint = found.checkpoint;
    this.#oldest = found.oldest;
    this.#newest = found.newest;
    this.#count = found.count;
    // Events replayed at open are not in any checkpoint yet: count them, or
    // a store killed every time before the interval would replay ever more.
    this.#sinceCheckpoint = found.recovery.replayed;
    this.#insertBatch = db.prepare(
      "INSERT INTO batches (first_version, last_version, events, lines) VALUES (?, ?, ?, ?)",
    );
    this.#setHighest = db.prepare("UPDATE meta SET value = ? WHERE key = 'highest_version'");
    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#commit = db.prepare("COMMIT");
    // Batches are contiguous ranges keyed by their first version: start at
    // the one that may hold `since + 1` and walk forward on the primary key.
    this.#selectSince = db.prepare(
      `SELECT lines FROM batches WHERE first_version >= coalesce(
         (SELECT max(first_version) FROM batches WHERE first_version <= ?1), 0)
       ORDER BY first_version`,
    );
  }

  /**
   * Opens (or creates) the store in `options.dataDir` and rebuilds the state
   * from it. Throws {@linkcode StoreError} with a precise message when the
   * dir is unusable or unsafe, locked by another srv (after waiting
   * `lockWaitMs`), when the store is empty, read-only or cannot be written,
   * not an srv store, from a newer srv, or corrupt; it never starts empty
   * over an existing store. A rule of the data dir's that failed
   * (`data_dir.ts`) is the error's `cause`.
   */
  static async open(
    options: StoreOptions,
  ): Promise<{ log: DurableEventLog; recovery: StoreRecovery }> {
    try {
      return await DurableEventLog.#open(options);
    } catch (e) {
      // Callers see one error type; the data dir's rules keep their message,
      // and their `unsafe` flag (exit 4) rides along as the cause.
      if (e instanceof DataDirError) throw new StoreError(e.path, e.message, { cause: e });
      throw e;
    }
  }

  static async #open(
    options: StoreOptions,
  ): Promise<{ log: DurableEventLog; recovery: StoreRecovery }> {
    const dir = options.dataDir;
    // The data dir's rules (ownership, modes, the lock, a writable store)
    // live in data_dir.ts and throw DataDirError with their own message.
    prepareDataDir(dir);
    const lock = await lockDataDir(
      joinPath(dir, STORE_LOCK_FILE),
      options.lockWaitMs ?? 0,
      options.onLockWait,
    );
    const path = joinPath(dir, STORE_FILE);
    let db: DatabaseSync | undefined;
    try {
      prepareStoreFile(path);
      db = openDatabase(path, options);
      const found = recover(db, path);
      // Before readiness: a store that cannot be written would otherwise
      // fail on the first register, after clients were told srv is up.
      probeWritable(db, path, options.maxPages);
      const log = new DurableEventLog(path, db, lock, options, found);
      log.#preloadRing();
      return { log, recovery: found.recovery };
    } catch (e) {
      try {
        db?.close();
      } catch {
        // Nothing more to release.
      }
      lock.close();
      if (e instanceof StoreError || e instanceof DataDirError) throw e;
      throw new StoreError(
        path,
        `cannot open the store ${path}: ${describeFailure(path, e, options.maxPages)}`,
        { cause: e },
      );
    }
  }

  append(entry: LogEntry): void {
    this.#ring.append(entry);
    this.#pending.push(entry);
    this.#oldest ??= entry.version;
    this.#newest = entry.version;
    this.#count++;
  }

  /**
   * Commits appended events, the highest issued version and (every
   * `checkpointEvery` events) a checkpoint of `state`, in one transaction.
   * Throws {@linkcode StoreError} when the write fails; nothing appended
   * since the last commit may then be broadcast.
   */
  commit(state: State): void {
    if (this.#pending.length === 0 && state.eventVersion === this.#committedVersion) return;
    const checkpointDue =
      this.#sinceCheckpoint + this.#pending.length >= this.#checkpointInterval(state);
    try {
      this.#begin.run();
      this.#writePending(state);
      if (checkpointDue) this.#checkpoint(state);
      this.#commit.run();
    } catch (e) {
      this.#rollback();
      throw new StoreError(this.path, `writing to the store ${this.path} failed: ${message(e)}`, {
        cause: e,
      });
    }
    this.#sinceCheckpoint = checkpointDue ? 0 : this.#sinceCheckpoint + this.#pending.length;
    this.#pending = [];
    this.#committedVersion = state.eventVersion;
  }

  /**
   * Inside a transaction: the pending events as one batch, and the highest
   * version when the batch does not already say it (the turn ended with an
   * unlogged event, such as an error). Recovery takes the larger of both.
   */
  #writePending(state: State): void {
    const pending = this.#pending;
    const last = pending.at(-1)?.version;
    if (last !== undefined) {
      const lines = pending.length === 1 ? pending[0].json : pending.map((e) => e.json).join("\n");
      this.#insertBatch.run(pending[0].version, last, pending.length, lines);
    }
    if (last !== state.eventVersion) this.#setHighest.run(state.eventVersion);
  }

  eventsSince(since: U64, maxBytes: number = Infinity): LogEntries {
    const ringOldest = this.#ring.oldest;
    const bound = sinceBound(since);
    if (ringOldest === null || bound >= ringOldest - 1) {
      return this.#ring.eventsSince(since, maxBytes);
    }
    if (maxBytes === Infinity) {
      const out = entriesOf(this.#selectSince.iterate(bound) as Iterable<{ lines: string }>, bound);
      for (const entry of this.#pending) if (entry.version > bound) out.push(entry);
      return out;
    }
    // Within a budget, the newest first: the ring, then what is older than
    // it (uncommitted events a long turn pushed out of the ring, then the
    // disk, newest batch first), while each event fits.
    const newer = this.#ring.eventsSince(since, maxBytes);
    if (newer.cut) return newer;
    let left = maxBytes;
    for (const entry of newer) left -= utf8Length(entry.json) + 1;
    const older: LogEntry[] = [];
    const take = (version: number, json: string): boolean => {
      const size = utf8Length(json) + 1;
      if (size > left) return false;
      left -= size;
      older.push({ version, json });
      return true;
    };
    let cut = false;
    for (let i = this.#pending.length - 1; i >= 0 && !cut; i--) {
      const { version, json } = this.#pending[i];
      if (version >= ringOldest) continue;
      if (version <= bound) break;
      cut = !take(version, json);
    }
    if (!cut) {
      const oldestPending = this.#pending[0]?.version ?? Infinity;
      this.#selectBefore ??= this.#db.prepare(
        "SELECT lines FROM batches WHERE first_version < ? ORDER BY first_version DESC",
      );
      const rows = this.#selectBefore.iterate(Math.min(ringOldest, oldestPending)) as Iterable<
        { lines: string }
      >;
      rows: for (const row of rows) {
        const lines = row.lines.split("\n");
        for (let k = lines.length - 1; k >= 0; k--) {
          const version = versionOfLine(lines[k]);
          if (version >= ringOldest || version >= oldestPending) continue;
          if (version <= bound) break rows;
          if (!take(version, lines[k])) {
            cut = true;
            break rows;
          }
        }
      }
    }
    const out: LogEntries = older.reverse();
    for (const entry of newer) out.push(entry);
    if (cut) out.cut = true;
    return out;
  }

  isTruncated(since: U64): boolean {
    return truncatedAfter(this.#oldest, since);
  }

  stats(): LogStats {
    return { oldest: this.#oldest, newest: this.#newest, retained: this.#count };
  }

  /**
   * Events between checkpoints: `checkpointEvery`, or the size of the tree
   * when that is larger, so writing a checkpoint (O(tree)) costs O(1) per
   * event and a restart replays at most that many events.
   */
  #checkpointInterval(state: State): number {
    return Math.max(
      this.checkpointEvery,
      state.workspaces.size + state.tabs.size + state.blocks.size,
    );
  }

  /** Version of the latest checkpoint on disk (0 when none). */
  get latestCheckpoint(): number {
    return this.#latestCheckpoint;
  }

  /**
   * Writes a final checkpoint of `state` (so the next start replays nothing)
   * and closes the database and the lock. Safe to call twice.
   */
  close(state?: State): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (state !== undefined) {
        this.#begin.run();
        this.#writePending(state);
        this.#checkpoint(state);
        this.#commit.run();
        this.#pending = [];
      }
    } catch (e) {
      this.#rollback();
      throw new StoreError(this.path, `final checkpoint of ${this.path} failed: ${message(e)}`, {
        cause: e,
      });
    } finally {
      this.#db.close();
      this.#lock.close();
    }
  }

  #checkpoint(state: State): void {
    const version = state.eventVersion;
    if (version <= this.#latestCheckpoint) return;
    this.#db.prepare("INSERT INTO checkpoints (version, state, created_at) VALUES (?, ?, ?)")
      .run(version, toCheckpoint(state), new Date().toISOString());
    this.#db.prepare("DELETE FROM checkpoints WHERE version < ?").run(version);
    this.#latestCheckpoint = version;
    this.#prune();
  }

  /**
   * Drops whole batches past the retention, but never an event after the
   * latest checkpoint. Runs inside the commit's transaction, after the
   * pending batch was written.
   */
  #prune(): void {
    let excess = this.#count - this.retainEvents;
    if (excess <= 0) return;
    // Whole batches, oldest first, while they fit in the excess and are all
    // covered by the latest checkpoint.
    let lastGone: number | null = null;
    let gone = 0;
    const oldest = this.#db.prepare(
      "SELECT first_version, last_version, events FROM batches ORDER BY first_version",
    ).iterate() as Iterable<{ first_version: number; last_version: number; events: number }>;
    for (const batch of oldest) {
      if (batch.events > excess || batch.last_version > this.#latestCheckpoint) break;
      excess -= batch.events;
      gone += batch.events;
      lastGone = batch.first_version;
    }
    if (lastGone === null) return;
    this.#db.prepare("DELETE FROM batches WHERE first_version <= ?").run(lastGone);
    const first = this.#db.prepare("SELECT min(first_version) AS lo FROM batches").get() as {
      lo: number | null;
    };
    this.#count -= gone;
    this.#oldest = first.lo;
  }

  #preloadRing(): void {
    const newestFirst = this.#db.prepare(
      "SELECT lines, events FROM batches ORDER BY first_version DESC",
    ).iterate() as Iterable<{ lines: string; events: number }>;
    const batches: { lines: string }[] = [];
    let events = 0;
    for (const row of newestFirst) {
      batches.push(row);
      events += row.events;
      if (events >= this.#ring.capacity) break;
    }
    const entries = entriesOf(batches.reverse(), 0);
    for (const entry of entries.slice(-this.#ring.capacity)) this.#ring.append(entry);
  }

  #rollback(): void {
    try {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
    } catch {
      // The transaction is already gone; the error that got us here is reported.
    }
  }
}

function openDatabase(path: string, options: StoreOptions): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    // The first statement reads the file header: a file that is not SQLite fails here.
    db.exec("PRAGMA journal_mode = WAL");
  } catch (e) {
    db.close();
    // A full disk or a read-only file fails here too: say which.
    throw new StoreError(path, `cannot open the store ${path}: ${describeFailure(path, e)}`, {
      cause: e,
    });
  }
  db.exec(`PRAGMA synchronous = ${options.sync === "full" ? "FULL" : "NORMAL"}`);
  db.exec("PRAGMA foreign_keys = OFF");
  // srv holds srv.lock for its whole life, so SQLite's per-transaction file
  // locking (several fcntl calls per commit) buys nothing: take the locks
  // once. The larger auto-checkpoint spreads WAL checkpoints, which fsync,
  // over ten times more commits.
  db.exec("PRAGMA locking_mode = EXCLUSIVE");
  db.exec("PRAGMA wal_autocheckpoint = 10000");
  if (options.maxPages !== undefined) db.exec(`PRAGMA max_page_count = ${options.maxPages}`);
  return db;
}

function pragmaNumber(db: DatabaseSync, name: string): number {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, number>;
  return Number(Object.values(row)[0]);
}

function migrate(db: DatabaseSync, path: string): void {
  const appId = pragmaNumber(db, "application_id");
  const schema = pragmaNumber(db, "user_version");
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n;
  if (appId !== STORE_APPLICATION_ID) {
    if (appId !== 0 || schema !== 0 || tables !== 0) {
      throw new StoreError(
        path,
        `${path} is an SQLite database but not an srv store; refusing to use it`,
      );
    }
  }
  if (schema > STORE_SCHEMA_VERSION) {
    throw new StoreError(
      path,
      `the store ${path} has schema version ${schema}, newer than this srv supports (${STORE_SCHEMA_VERSION}); use a newer srv`,
    );
  }
  const pending = MIGRATIONS.filter((m) => m.to > schema);
  if (pending.length === 0) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const m of pending) db.exec(m.sql);
    db.exec(`PRAGMA application_id = ${STORE_APPLICATION_ID}`);
    db.exec(`PRAGMA user_version = ${STORE_SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    throw new StoreError(
      path,
      `migrating the store ${path} to schema ${STORE_SCHEMA_VERSION} failed: ${message(e)}`,
      {
        cause: e,
      },
    );
  }
}

function recover(db: DatabaseSync, path: string) {
  migrate(db, path);
  const check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
  if (check.length !== 1 || check[0].quick_check !== "ok") {
    const detail = check.slice(0, 3).map((r) => r.quick_check).join("; ");
    throw new StoreError(path, `the store ${path} is corrupt: ${detail}`);
  }
  const highest = (db.prepare("SELECT value FROM meta WHERE key = 'highest_version'").get() as
    | { value: number }
    | undefined)?.value;
  if (highest === undefined) {
    throw new StoreError(path, `the store ${path} is corrupt: no highest_version`);
  }
  const checkpoint = db.prepare(
    "SELECT version, state FROM checkpoints ORDER BY version DESC LIMIT 1",
  )
    .get() as { version: number; state: string } | undefined;
  let state = checkpoint === undefined ? initialState() : fromCheckpoint(checkpoint.state);
  const after = checkpoint?.version ?? 0;
  let replayed = 0;
  const tail = db.prepare(
    `SELECT lines FROM batches WHERE first_version >= coalesce(
       (SELECT max(first_version) FROM batches WHERE first_version <= ?1), 0)
     ORDER BY first_version`,
  ).iterate(after) as Iterable<{ lines: string }>;
  for (const row of tail) {
    for (const line of row.lines.split("\n")) {
      if (versionOfLine(line) <= after) continue;
      // The state is ours alone here, so replay can update it in place.
      state = evolveOwned(state, JSON.parse(line) as ReducerEvent);
      replayed++;
    }
  }
  const stats = db.prepare(
    "SELECT coalesce(sum(events), 0) AS n, min(first_version) AS lo, max(last_version) AS hi FROM batches",
  ).get() as { n: number; lo: number | null; hi: number | null };
  // A restart starts over: nobody is connected, so no process is running.
  const recovered: State = {
    ...state,
    lifecycle: "starting",
    processes: new Map(),
    eventVersion: Math.max(highest, state.eventVersion, stats.hi ?? 0),
  };
  return {
    highest: recovered.eventVersion,
    checkpoint: checkpoint?.version ?? 0,
    oldest: stats.lo,
    newest: stats.hi,
    count: stats.n,
    recovery: {
      state: recovered,
      checkpointVersion: checkpoint?.version ?? 0,
      replayed,
      stored: stats.n,
    },
  };
}
