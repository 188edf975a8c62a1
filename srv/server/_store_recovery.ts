/**
 * Reading a store back: the batches checked line by line before any may
 * reach a client, and the state rebuilt from the tables on open.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { LogEntry } from "../core/event_log.ts";
import { measure } from "../core/limits.ts";
import { initialState, type State } from "../core/state.ts";
import { message, migrate, StoreError } from "./_store_schema.ts";
import { DamagedRowError, loadTree, type Placement, type Tree } from "./_tree_tables.ts";

/** The version of a stored event line: the encoder always writes it last. */
export function versionOfLine(line: string): number {
  return Number(line.slice(line.lastIndexOf('"version":') + 10, -1));
}

/**
 * Why a stored event line cannot be sent as it is, or null when it can: it
 * must parse as JSON, be an object with a string `event`, and carry as its
 * last field the `version` it is filed under (rows edited behind srv's back
 * pass SQLite's integrity check, but must never reach a client).
 */
export function lineProblem(line: string, version: number): string | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return `not valid JSON (${message(e)})`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "not a JSON object";
  }
  const fields = value as { event?: unknown; version?: unknown };
  if (typeof fields.event !== "string") return "without a string `event` field";
  if (fields.version !== version) return "without its `version` as the last field";
  return null;
}

/** A batch row as read back from disk. */
export interface BatchRow {
  first_version: number;
  last_version: number;
  events: number;
  lines: string;
}

/** What reading batches found: the good entries, and the newest damaged version. */
export interface ReadBack {
  entries: LogEntry[];
  /** The last version of the newest damaged row read, or 0. */
  damagedThrough: number;
  problems: string[];
}

/**
 * The entries of stored batches with version above \`since\`, oldest first,
 * each checked by {@linkcode lineProblem}. A damaged row is not sent: what
 * was read before it is dropped too, so the answer is the history as if it
 * began after that row (truncated), never a gap in the middle.
 */
export function readBatches(rows: Iterable<BatchRow>, since: number, path: string): ReadBack {
  let out: LogEntry[] = [];
  let damagedThrough = 0;
  const problems: string[] = [];
  for (const row of rows) {
    const checked = checkBatch(row, since);
    if (typeof checked === "string") {
      problems.push(`${path}: batches row first_version=${row.first_version} ${checked}`);
      damagedThrough = Math.max(damagedThrough, row.last_version);
      out = [];
      continue;
    }
    for (const entry of checked) out.push(entry);
  }
  return { entries: out, damagedThrough, problems };
}

/**
 * One batch row's entries with version above `since`, oldest first, or
 * why the row is damaged (then none of it may be sent).
 */
export function checkBatch(row: BatchRow, since: number): LogEntry[] | string {
  const lines = row.lines.split("\n");
  if (lines.length !== row.events) return `holds ${lines.length} lines for ${row.events} events`;
  const good: LogEntry[] = [];
  let previous = row.first_version - 1;
  for (let i = 0; i < lines.length; i++) {
    // Unlogged events (errors) take versions too: a batch's versions rise
    // but need not be contiguous.
    const version = versionOfLine(lines[i]);
    const last = i === lines.length - 1;
    if (
      !Number.isSafeInteger(version) || version <= previous || version > row.last_version ||
      (i === 0 && version !== row.first_version) || (last && version !== row.last_version)
    ) {
      return `line ${i + 1} is not an event filed between v${row.first_version} and ` +
        `v${row.last_version}`;
    }
    previous = version;
    if (version <= since) continue;
    const why = lineProblem(lines[i], version);
    if (why !== null) return `line ${i + 1} (v${version}) is ${why}`;
    good.push({ version, json: lines[i] });
  }
  return good;
}
/** What {@linkcode recover} found on disk. */
export interface Found {
  readonly state: State;
  readonly placement: Placement;
  readonly highest: number;
  readonly tablesVersion: number;
  readonly nextClientId: number;
  readonly oldest: number | null;
  readonly newest: number | null;
  readonly count: number;
  /** UTF-8 bytes of the stored lines. */
  readonly bytes: number;
  readonly migratedFrom: number;
}

/**
 * The one place a {@linkcode State} is built from stored rows: the tree
 * from the tables and the scalars; everything else starts fresh.
 */
export function stateFromTables(
  tree: Tree,
  scalars: { version: number; nextClientId: number },
): State {
  return {
    ...initialState(),
    eventVersion: scalars.version,
    nextClientId: scalars.nextClientId,
    workspaces: tree.workspaces,
    tabs: tree.tabs,
    blocks: tree.blocks,
    // Not stored: recomputed, so the size caps see the tree as it is.
    contentBytes: measure(tree),
    // When each entity last changed is not stored: a condition older than
    // the tables fails safe (docs/PROTOCOL.md §11.3); the events replayed on
    // top record their changes as live traffic does.
    changesKnownFrom: scalars.version,
  };
}

export function scalar(db: DatabaseSync, path: string, key: string): number {
  const row = db.prepare("SELECT value FROM scalars WHERE key = ?").get(key) as
    | { value: number }
    | undefined;
  if (row === undefined) throw new StoreError(path, `the store ${path} is corrupt: no ${key}`);
  return row.value;
}

export function recover(db: DatabaseSync, path: string): Found {
  const migratedFrom = migrate(db, path);
  const check = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
  if (check.length !== 1 || check[0].quick_check !== "ok") {
    const detail = check.slice(0, 3).map((r) => r.quick_check).join("; ");
    throw new StoreError(path, `the store ${path} is corrupt: ${detail}`);
  }
  const highest = scalar(db, path, "highest_version");
  const tablesVersion = scalar(db, path, "tables_version");
  const nextClientId = scalar(db, path, "next_client_id");
  let loaded;
  try {
    loaded = loadTree(db);
  } catch (e) {
    if (!(e instanceof DamagedRowError)) throw e;
    throw new StoreError(path, `the store ${path} is corrupt: ${e.message}`, { cause: e });
  }
  const stats = db.prepare(
    `SELECT coalesce(sum(events), 0) AS n, coalesce(sum(octet_length(lines)), 0) AS bytes,
       min(first_version) AS lo, max(last_version) AS hi FROM batches`,
  ).get() as { n: number; bytes: number; lo: number | null; hi: number | null };
  return {
    state: stateFromTables(loaded.tree, { version: tablesVersion, nextClientId }),
    placement: {
      tabPositions: loaded.tabPositions,
      blockPositions: loaded.blockPositions,
      rowids: loaded.rowids,
    },
    highest,
    tablesVersion,
    nextClientId,
    oldest: stats.lo,
    newest: stats.hi,
    count: stats.n,
    bytes: stats.bytes,
    migratedFrom,
  };
}
