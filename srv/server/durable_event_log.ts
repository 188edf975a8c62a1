/**
 * Durable state (docs/PROTOCOL.md §8): an embedded SQLite store behind the event
 * log's seam. Every logged event, the highest issued version and the rows
 * of the tree those events changed (workspaces, tabs, blocks: one row each,
 * see `_tree_tables.ts`) are committed in one transaction before the server
 * broadcasts them. A restart loads the tables, not the history;
 * `get_events` reaches back past the memory ring as far as the store's
 * retention.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { getLogger, type Logger } from "../../deps.ts";
import { sinceBound, truncatedAfter } from "../core/_since.ts";
import { parseJson } from "../core/codec.ts";
import {
  DEFAULT_RING_CAPACITY,
  type EventHistory,
  EventLog,
  type LogEntries,
  type LogEntry,
} from "../core/event_log.ts";
import { evolveInPlace } from "../core/evolve.ts";
import { utf8Length } from "../core/line_splitter.ts";
import type { LoggedEvent, LogStats, U64 } from "../core/protocol.ts";
import type { State } from "../core/state.ts";
import {
  type BatchRow,
  checkBatch,
  type Found,
  type ReadBack,
  readBatches,
  recover,
} from "./_store_recovery.ts";
import { message, StoreError } from "./_store_schema.ts";
import { joinPath, openDatabase } from "./_store_open.ts";
import { Pruner } from "./_store_prune.ts";
import { TreeWriter } from "./_tree_tables.ts";
import {
  DataDirError,
  describeFailure,
  lockDataDir,
  prepareDataDir,
  prepareStoreFile,
  probeWritable,
} from "./data_dir.ts";

/** Default of `--retain-events`: events kept on disk for `get_events`. */
export const DEFAULT_RETAIN_EVENTS = 100_000;
/**
 * Default of `--retain-bytes`: UTF-8 bytes of event lines kept on disk,
 * 1 GiB. Events are up to a line (1 MiB) and a cascade's `block_ids` up
 * to 4 MB, so 100,000 of them alone could be 39 GB (4,096 events of a
 * `reorder_tabs_bulk` of 10,000 tabs are 1.6 GB); at most this many bytes
 * of history stay, whichever of the two bounds is reached first.
 */
export const DEFAULT_RETAIN_BYTES = 1024 * 1024 * 1024;
/**
 * Most events one commit deletes past the retention: pruning is spread over
 * turns in bounded chunks, so lowering `--retain-events` on a big store
 * never stalls a turn on one giant DELETE.
 */
export const PRUNE_CHUNK_EVENTS = 1000;
/** File names inside the data dir. */
export const STORE_FILE = "srv.db";
/** The lock that keeps a second srv off the same data dir. */
export const STORE_LOCK_FILE = "srv.lock";

/** How to open a store. */
export interface StoreOptions {
  /** Directory holding `srv.db` and `srv.lock`; created 0700 when missing. */
  readonly dataDir: string;
  /** Events kept for `get_events` (at least the memory ring's capacity). */
  readonly retainEvents?: number;
  /** UTF-8 bytes of event lines kept for `get_events` (at least the memory ring's bytes). */
  readonly retainBytes?: number;
  /** `normal` survives a crash of srv; `full` also survives power loss (fsync per commit). */
  readonly sync?: "normal" | "full";
  /** Size of the memory ring in front of the store. */
  readonly ringCapacity?: number;
  /** Most bytes of lines the memory ring holds (default: `--max-reply-bytes`' default). */
  readonly ringBytes?: number;
  /** Caps the database size in pages (diagnostics: makes "disk full" reproducible). */
  readonly maxPages?: number;
  /** How long to wait for another srv (one shutting down) to release the data dir; default 0. */
  readonly lockWaitMs?: number;
  /** Called once when that wait starts (for the log). */
  readonly onLockWait?: (lockPath: string, waitMs: number) => void;
  /**
   * Gives up that wait when aborted (srv got a stop signal meanwhile):
   * `open` then throws a {@linkcode StoreError} whose cause is a
   * `LockWaitAborted` (`data_dir.ts`).
   */
  readonly signal?: AbortSignal;
}

/** What opening the store found. */
export interface StoreRecovery {
  /** The state loaded from the tables, plus the events newer than them. */
  readonly state: State;
  /** The version the tables reflected on disk (before any replay). */
  readonly tablesVersion: number;
  /** Events newer than the tables, replayed and written back (normally 0). */
  readonly replayed: number;
  /** Events on disk. */
  readonly stored: number;
  /** The schema version the store had before this open (0: a new store). */
  readonly migratedFrom: number;
}

/**
 * The event history of a durable srv: the memory ring in front, SQLite
 * behind, and the tree's tables committed with the events. Open it with
 * {@linkcode DurableEventLog.open}, hand it to the server as `history`, and
 * {@linkcode DurableEventLog.close} it on shutdown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DurableEventLog, Server } from "@srv/srv/server";
 *
 * const dataDir = `${Deno.makeTempDirSync()}/data`;
 * const { log, recovery } = await DurableEventLog.open({ dataDir });
 * assert.equal(recovery.migratedFrom, 0); // a new store
 * const identity = { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() };
 * const server = new Server({
 *   identity,
 *   history: log,
 *   initialState: recovery.state,
 *   storePath: log.path,
 * });
 * // ... serve, then on shutdown:
 * await server.shutdown();
 * log.close(server.state);
 * ```
 */
export class DurableEventLog implements EventHistory {
  /** Path of the SQLite database file. */
  readonly path: string;
  /** Most logged events kept on disk. */
  readonly retainEvents: number;
  /** Most bytes of logged events kept on disk. */
  readonly retainBytes: number;
  readonly #db: DatabaseSync;
  readonly #lock: Deno.FsFile;
  readonly #ring: EventLog;
  readonly #tree: TreeWriter;
  readonly #log: Logger = getLogger(["srv", "store"]);
  #pending: LogEntry[] = [];
  #committedVersion: number;
  #nextClientId: number;
  #oldest: number | null;
  #newest: number | null;
  #count: number;
  /** UTF-8 bytes of the lines of the stored batches. */
  #bytes: number;
  /** Newest version of a damaged history row found so far (0: none). */
  #damagedThrough = 0;
  #closed = false;
  readonly #insertBatch: StatementSync;
  /** The same from the ring's UTF-8 bytes (one view of the turn's lines, not a copy). */
  readonly #insertBatchBytes: StatementSync;
  readonly #setVersions: StatementSync;
  readonly #setNextClientId: StatementSync;
  readonly #begin: StatementSync;
  readonly #commit: StatementSync;
  readonly #selectSince: StatementSync;
  readonly #pruner: Pruner;
  /** Batches older than a version, newest first (prepared on first use). */
  #selectBefore: StatementSync | null = null;

  private constructor(
    path: string,
    db: DatabaseSync,
    lock: Deno.FsFile,
    options: StoreOptions,
    found: Found,
  ) {
    this.path = path;
    this.#db = db;
    this.#lock = lock;
    this.#ring = new EventLog(options.ringCapacity ?? DEFAULT_RING_CAPACITY, options.ringBytes);
    // The ring answers for its newest events anyway; retaining fewer on disk
    // would make `truncated` contradict what get_events returns.
    this.retainEvents = Math.max(
      options.retainEvents ?? DEFAULT_RETAIN_EVENTS,
      this.#ring.capacity,
    );
    this.retainBytes = Math.max(
      options.retainBytes ?? DEFAULT_RETAIN_BYTES,
      this.#ring.maxBytes,
    );
    this.#tree = new TreeWriter(db, found.placement);
    this.#committedVersion = found.tablesVersion;
    this.#nextClientId = found.nextClientId;
    this.#oldest = found.oldest;
    this.#newest = found.newest;
    this.#count = found.count;
    this.#bytes = found.bytes;
    this.#insertBatch = db.prepare(
      "INSERT INTO batches (first_version, last_version, events, lines) VALUES (?, ?, ?, ?)",
    );
    this.#insertBatchBytes = db.prepare(
      `INSERT INTO batches (first_version, last_version, events, lines)
       VALUES (?, ?, ?, CAST(? AS TEXT))`,
    );
    // The tables commit with the events, so they always stand at the highest version.
    this.#setVersions = db.prepare(
      "UPDATE scalars SET value = ?1 WHERE key IN ('highest_version', 'tables_version')",
    );
    this.#setNextClientId = db.prepare(
      "UPDATE scalars SET value = ? WHERE key = 'next_client_id'",
    );
    this.#begin = db.prepare("BEGIN IMMEDIATE");
    this.#commit = db.prepare("COMMIT");
    // Batches are contiguous ranges keyed by their first version: start at
    // the one that may hold `since + 1` and walk forward on the primary key.
    this.#selectSince = db.prepare(
      `SELECT first_version, last_version, events, lines FROM batches
       WHERE first_version >= coalesce(
         (SELECT max(first_version) FROM batches WHERE first_version <= ?1), 0)
       ORDER BY first_version`,
    );
    this.#pruner = new Pruner(db);
  }

  /**
   * Opens (or creates) the store in `options.dataDir`, migrates it to this
   * schema, loads the tree from its tables and replays the events newer
   * than them (normally none). Throws {@linkcode StoreError} with a precise
   * message when the dir is unusable or unsafe, locked by another srv
   * (after waiting `lockWaitMs`), when the store is empty, read-only or
   * cannot be written, not an srv store, from a newer srv, or corrupt; it
   * never starts empty over an existing store. A rule of the data dir's
   * that failed (`data_dir.ts`) is the error's `cause`.
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
      options.signal,
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
      const recovery = log.#catchUp(found);
      log.#preloadRing();
      return { log, recovery };
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

  /**
   * Replays the events newer than the tables (after a migration: those
   * after the old checkpoint) and commits the rows they touched, so the
   * next open has nothing to replay.
   */
  #catchUp(found: Found): StoreRecovery {
    let state = found.state;
    let replayed = 0;
    if ((found.newest ?? 0) > found.tablesVersion) {
      const rows = this.#selectSince.iterate(found.tablesVersion) as Iterable<BatchRow>;
      const read = readBatches(rows, found.tablesVersion, this.path);
      if (read.problems.length > 0) {
        throw new StoreError(
          this.path,
          `the store ${this.path} is corrupt: the events after its tables cannot be replayed: ` +
            read.problems[0],
        );
      }
      for (const entry of read.entries) {
        // The state is ours alone here, so replay can update it in place.
        const event = parseJson(entry.json) as LoggedEvent;
        state = evolveInPlace(state, event);
        this.#tree.track(event);
        replayed++;
      }
    }
    // A restart starts over: nobody is connected, so no process is running.
    const recovered: State = {
      ...state,
      lifecycle: "starting",
      processes: new Map(),
      eventVersion: Math.max(found.highest, state.eventVersion, found.newest ?? 0),
    };
    if (replayed > 0 || recovered.eventVersion !== found.tablesVersion) this.commit(recovered);
    return {
      state: recovered,
      tablesVersion: found.tablesVersion,
      replayed,
      stored: found.count,
      migratedFrom: found.migratedFrom,
    };
  }

  append(entry: LogEntry): void {
    this.#ring.append(entry);
    this.#pending.push(entry);
    this.#tree.track(entry.event ?? parseJson(entry.json) as LoggedEvent);
    this.#oldest ??= entry.version;
    this.#newest = entry.version;
    this.#count++;
  }

  /**
   * Commits appended events, the highest issued version and the rows of
   * the tree they changed (read from `state`, the state after them), in one
   * transaction, and prunes a bounded chunk past the retention. Throws
   * {@linkcode StoreError} when the write fails; nothing appended since the
   * last commit may then be broadcast.
   */
  commit(state: State): void {
    if (
      this.#pending.length === 0 && state.eventVersion === this.#committedVersion &&
      !this.#tree.pending
    ) return;
    try {
      this.#begin.run();
      const pending = this.#pending;
      if (pending.length > 0) {
        const first = pending[0].version;
        const last = pending.at(-1)!.version;
        // The ring holds the turn's lines already encoded, one after another
        // (each with its "\n"): written as they are, they need no join, no
        // second UTF-8 encoding and no count.
        const bytes = this.#ring.newestLines(pending.length);
        if (bytes !== null) {
          const lines = bytes.subarray(0, bytes.length - 1);
          this.#insertBatchBytes.run(first, last, pending.length, lines);
          this.#bytes += lines.length;
        } else {
          const lines = pending.length === 1
            ? pending[0].json
            : pending.map((e) => e.json).join("\n");
          this.#insertBatch.run(first, last, pending.length, lines);
          this.#bytes += utf8Length(lines);
        }
      }
      this.#tree.write(state);
      if (state.eventVersion !== this.#committedVersion) {
        this.#setVersions.run(state.eventVersion);
      }
      if (state.nextClientId !== this.#nextClientId) {
        this.#setNextClientId.run(state.nextClientId);
      }
      this.#prune();
      this.#commit.run();
    } catch (e) {
      this.#rollback();
      throw new StoreError(this.path, `writing to the store ${this.path} failed: ${message(e)}`, {
        cause: e,
      });
    }
    this.#pending = [];
    this.#committedVersion = state.eventVersion;
    this.#nextClientId = state.nextClientId;
  }

  /** The ring's view of its newest lines (see {@linkcode EventLog.newestLines}). */
  newestLines(count: number): Uint8Array | null {
    return this.#ring.newestLines(count);
  }

  eventsSince(since: U64, maxBytes: number = Infinity): LogEntries {
    const ringOldest = this.#ring.oldest;
    const bound = Math.max(sinceBound(since), this.#damagedThrough);
    if (ringOldest === null || bound >= ringOldest - 1) {
      return this.#ring.eventsSince(bound, maxBytes);
    }
    if (maxBytes === Infinity) {
      const read = readBatches(
        this.#selectSince.iterate(bound) as Iterable<BatchRow>,
        bound,
        this.path,
      );
      if (read.damagedThrough > 0) this.#damaged(read);
      const out: LogEntries = read.entries;
      for (const entry of this.#pending) if (entry.version > bound) out.push(entry);
      return out;
    }
    // Within a budget, the newest first: the ring, then what is older than
    // it (uncommitted events a long turn pushed out of the ring, then the
    // disk, newest batch first), while each event fits. A damaged batch
    // ends the walk: history is answered as if it began after it.
    const newer = this.#ring.eventsSince(bound, maxBytes);
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
        `SELECT first_version, last_version, events, lines FROM batches
         WHERE first_version < ? ORDER BY first_version DESC`,
      );
      const rows = this.#selectBefore.iterate(Math.min(ringOldest, oldestPending)) as Iterable<
        BatchRow
      >;
      rows: for (const row of rows) {
        if (row.last_version <= bound) break;
        const checked = checkBatch(row, bound);
        if (typeof checked === "string") {
          this.#damaged({
            entries: [],
            damagedThrough: row.last_version,
            problems: [`${this.path}: batches row first_version=${row.first_version} ${checked}`],
          });
          break;
        }
        for (let k = checked.length - 1; k >= 0; k--) {
          const { version, json } = checked[k];
          if (version >= ringOldest || version >= oldestPending) continue;
          if (!take(version, json)) {
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
    return truncatedAfter(this.#oldest, since) ||
      (this.#damagedThrough > 0 && truncatedAfter(this.#damagedThrough + 1, since));
  }

  stats(): LogStats {
    return { oldest: this.#oldest, newest: this.#newest, retained: this.#count };
  }

  /**
   * Damaged history rows were read: say which, and from now on answer as if
   * the history began after the newest of them.
   */
  #damaged(read: ReadBack): void {
    for (const problem of read.problems) {
      this.#log.error("damaged history row, not sent: {problem}", { problem });
    }
    if (read.damagedThrough > this.#damagedThrough) {
      this.#damagedThrough = read.damagedThrough;
      this.#log.error(
        "history in {path} is answered as truncated before v{from} (the events up to it are " +
          "damaged on disk); the tree is not affected",
        { path: this.path, from: read.damagedThrough + 1 },
      );
    }
  }

  /**
   * Commits what is pending (when given the state) and closes the database
   * and the lock. The tables are always current, so there is nothing else
   * to write. Safe to call twice.
   */
  close(state?: State): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (state !== undefined) this.commit(state);
    } finally {
      this.#db.close();
      this.#lock.close();
    }
  }

  /**
   * Inside the commit's transaction: drops whole batches, oldest first,
   * past the retention, at most {@linkcode PRUNE_CHUNK_EVENTS} events' worth
   * (or one batch) per commit, so a large excess is worked off over turns.
   * The retained count may exceed the retention by that slack plus one batch.
   */
  #prune(): void {
    const excess = this.#count - this.retainEvents;
    const excessBytes = this.#bytes - this.retainBytes;
    // A little slack (1/64 of the retention, at most a chunk) so a store at
    // its retention prunes every few hundred events, not on every commit.
    const countDue = excess > 0 &&
      excess >= Math.min(PRUNE_CHUNK_EVENTS, this.retainEvents >> 6);
    const bytesDue = excessBytes > 0 && excessBytes >= this.retainBytes / 64;
    if (!countDue && !bytesDue) return;
    const budget = bytesDue ? PRUNE_CHUNK_EVENTS : Math.min(excess, PRUNE_CHUNK_EVENTS);
    const pruned = this.#pruner.prune(excess, excessBytes, budget);
    if (pruned === null) return;
    this.#count -= pruned.gone;
    this.#bytes -= pruned.goneBytes;
    this.#oldest = pruned.oldest;
  }

  #preloadRing(): void {
    const newestFirst = this.#db.prepare(
      "SELECT first_version, last_version, events, lines FROM batches ORDER BY first_version DESC",
    ).iterate() as Iterable<BatchRow>;
    const batches: BatchRow[] = [];
    let events = 0;
    let chars = 0;
    for (const row of newestFirst) {
      batches.push(row);
      events += row.events;
      chars += row.lines.length;
      // Characters are at most bytes: what the ring holds is read, no more.
      if (events >= this.#ring.capacity || chars >= this.#ring.maxBytes) break;
    }
    const read = readBatches(batches.reverse(), 0, this.path);
    if (read.damagedThrough > 0) this.#damaged(read);
    for (const entry of read.entries.slice(-this.#ring.capacity)) this.#ring.append(entry);
  }

  #rollback(): void {
    // The deletes it read ahead for may be undone.
    this.#pruner.reset();
    try {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
    } catch {
      // The transaction is already gone; the error that got us here is reported.
    }
  }
}
