/**
 * Opening the SQLite file of a `DurableEventLog`: the path inside
 * the data dir and the connection's pragmas (WAL, sync level, exclusive
 * locking, the page cap).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { StoreError } from "./_store_schema.ts";
import { describeFailure } from "./data_dir.ts";
import type { StoreOptions } from "./durable_event_log.ts";

export function joinPath(dir: string, file: string): string {
  const sep = Deno.build.os === "windows" ? "\\" : "/";
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + file : dir + sep + file;
}

export function openDatabase(path: string, options: StoreOptions): DatabaseSync {
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
