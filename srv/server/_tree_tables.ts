/**
 * The tree as SQLite tables (schema 2 of the store, docs/PROTOCOL.md §8): one row
 * per workspace, tab and block, in the protocol's vocabulary, children
 * ordered by an explicit `position`, `meta` as JSON text per row. The rows a
 * turn touched are known from its events ({@linkcode TreeWriter.track}) and
 * written in the transaction that commits those events, so a commit costs
 * O(change), never O(tree), and nothing ever holds the whole tree as one
 * string.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { type Json, type JsonObject, type LoggedEvent } from "../core/protocol.ts";
import { AT_END, placeInOrder, placeMoved, POSITION_STEP } from "./_positions.ts";
import type { Block, Tab, Workspace } from "../core/state.ts";

/** Most block metas one UPDATE writes (3 parameters each, far below SQLite's limit). */
const METAS_PER_UPDATE = 64;
/**
 * Longest meta text (UTF-16 units) written in a joined UPDATE; a longer
 * one gets a statement of its own (see {@linkcode TreeWriter}'s `#writeMetas`).
 */
const JOINED_META_CHARS = 256;

/** The statements that create the tree tables (run by the migration to schema 2). */
export const TREE_TABLES_SQL = `
  CREATE TABLE workspaces (
    workspace_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    active_tab_id TEXT,
    meta TEXT NOT NULL
  ) STRICT;
  CREATE TABLE tabs (
    tab_id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    meta TEXT NOT NULL
  ) STRICT;
  CREATE INDEX tabs_by_workspace ON tabs (workspace_id, position);
  CREATE TABLE blocks (
    block_id TEXT PRIMARY KEY,
    tab_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    meta TEXT NOT NULL
  ) STRICT;
  CREATE INDEX blocks_by_tab ON blocks (tab_id, position);
`;

/** The tree parts of a state, as loaded from or written to the tables. */
export interface Tree {
  readonly workspaces: ReadonlyMap<string, Workspace>;
  readonly tabs: ReadonlyMap<string, Tab>;
  readonly blocks: ReadonlyMap<string, Block>;
}

/** A row the store cannot turn back into the tree; the message names it. */
export class DamagedRowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DamagedRowError";
  }
}

/**
 * A meta value as JSON text. Metadata numbers are doubles (docs/PROTOCOL.md
 * §10), so this is exactly the text of the event that set it, and
 * `JSON.parse` reads back the same value.
 */
export function encodeMeta(meta: Json): string {
  return JSON.stringify(meta);
}

function decodeMeta(text: string, where: string): Json {
  try {
    // Not parseJson: that keeps a top-level field's big integer exact for
    // the protocol's u64 fields, and a meta's fields are not those.
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new DamagedRowError(`${where}: meta is not valid JSON (${(e as Error).message})`);
  }
}

function objectMeta(text: string, where: string): JsonObject {
  const meta = decodeMeta(text, where);
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    throw new DamagedRowError(`${where}: meta must be a JSON object`);
  }
  return meta;
}

// Names are read as bytes: node:sqlite reads TEXT as a C string and would
// cut a name at its first U+0000 ("x\u0000y" came back as "x" after a restart).
const NAME_BYTES = "CAST(name AS BLOB) AS name";
const nameDecoder = new TextDecoder();

/** Where the store keeps each child: its position, and each block's SQLite rowid. */
export interface Placement {
  /**
   * Position of every tab in the tables. Tabs and blocks keep separate
   * maps: a deleted tab's id may come back as a block's in the same turn
   * (docs/PROTOCOL.md §11.2), and one map would lose one of the two.
   */
  readonly tabPositions: Map<string, number>;
  /** Position of every block in the tables. */
  readonly blockPositions: Map<string, number>;
  /**
   * The rowid of every block's row: a meta update finds the row by it, one
   * B-tree descent instead of two (the `block_id` index, then the table).
   */
  readonly rowids: Map<string, number>;
}

/**
 * Streams the tables into maps, row by row, children in `position` order,
 * and returns them with every child's position and block's rowid. Throws
 * {@linkcode DamagedRowError} naming the row when one cannot be used (meta
 * that is not JSON, a child whose parent has no row).
 */
export function loadTree(db: DatabaseSync): { tree: Tree } & Placement {
  const tabPositions = new Map<string, number>();
  const blockPositions = new Map<string, number>();
  const rowids = new Map<string, number>();
  const workspaces = new Map<string, Workspace & { tabIds: string[] }>();
  const rows = db.prepare(
    `SELECT workspace_id, ${NAME_BYTES}, active_tab_id, meta FROM workspaces`,
  ).iterate() as Iterable<
    { workspace_id: string; name: Uint8Array; active_tab_id: string | null; meta: string }
  >;
  for (const r of rows) {
    workspaces.set(r.workspace_id, {
      id: r.workspace_id,
      name: nameDecoder.decode(r.name),
      tabIds: [],
      activeTabId: r.active_tab_id,
      meta: objectMeta(r.meta, `workspaces row workspace_id=${r.workspace_id}`),
    });
  }
  const tabs = new Map<string, Tab & { blockIds: string[] }>();
  const tabRows = db.prepare(
    `SELECT tab_id, workspace_id, position, ${NAME_BYTES}, meta FROM tabs
     ORDER BY workspace_id, position`,
  ).iterate() as Iterable<
    { tab_id: string; workspace_id: string; position: number; name: Uint8Array; meta: string }
  >;
  for (const r of tabRows) {
    const where = `tabs row tab_id=${r.tab_id}`;
    const ws = workspaces.get(r.workspace_id);
    if (ws === undefined) {
      throw new DamagedRowError(`${where}: workspace_id=${r.workspace_id} has no row`);
    }
    ws.tabIds.push(r.tab_id);
    tabPositions.set(r.tab_id, r.position);
    tabs.set(r.tab_id, {
      id: r.tab_id,
      workspaceId: r.workspace_id,
      name: nameDecoder.decode(r.name),
      blockIds: [],
      meta: objectMeta(r.meta, where),
    });
  }
  const blocks = new Map<string, Block>();
  const blockRows = db.prepare(
    "SELECT rowid AS row_id, block_id, tab_id, position, meta FROM blocks ORDER BY tab_id, position",
  ).iterate() as Iterable<
    { row_id: number; block_id: string; tab_id: string; position: number; meta: string }
  >;
  for (const r of blockRows) {
    const where = `blocks row block_id=${r.block_id}`;
    const tab = tabs.get(r.tab_id);
    if (tab === undefined) throw new DamagedRowError(`${where}: tab_id=${r.tab_id} has no row`);
    tab.blockIds.push(r.block_id);
    blockPositions.set(r.block_id, r.position);
    rowids.set(r.block_id, r.row_id);
    blocks.set(r.block_id, { id: r.block_id, tabId: r.tab_id, meta: decodeMeta(r.meta, where) });
  }
  return { tree: { workspaces, tabs, blocks }, tabPositions, blockPositions, rowids };
}

/**
 * Writes a whole tree into empty tables, children numbered
 * `POSITION_STEP` apart: for the migration from schema 1, whose checkpoint
 * held the tree in one string.
 */
export function insertTree(db: DatabaseSync, tree: Tree): void {
  const ws = db.prepare(
    "INSERT INTO workspaces (workspace_id, name, active_tab_id, meta) VALUES (?, ?, ?, ?)",
  );
  const tab = db.prepare(
    "INSERT INTO tabs (tab_id, workspace_id, position, name, meta) VALUES (?, ?, ?, ?, ?)",
  );
  const block = db.prepare(
    "INSERT INTO blocks (block_id, tab_id, position, meta) VALUES (?, ?, ?, ?)",
  );
  for (const w of tree.workspaces.values()) {
    ws.run(w.id, w.name, w.activeTabId, encodeMeta(w.meta));
    w.tabIds.forEach((id, i) => {
      const t = tree.tabs.get(id);
      if (t === undefined) return;
      tab.run(t.id, w.id, (i + 1) * POSITION_STEP, t.name, encodeMeta(t.meta));
      t.blockIds.forEach((bid, j) => {
        const b = tree.blocks.get(bid);
        if (b !== undefined) block.run(b.id, t.id, (j + 1) * POSITION_STEP, encodeMeta(b.meta));
      });
    });
  }
}

/**
 * Knows which rows this turn's events touched, and writes exactly those
 * from the state after the turn. Call {@linkcode TreeWriter.track} for each
 * logged event as it is appended, then {@linkcode TreeWriter.write} inside
 * the commit's transaction.
 */
export class TreeWriter {
  /** Position of every tab in the tables. */
  readonly #tabPositions: Map<string, number>;
  /** Position of every block in the tables (apart from tabs': an id may pass between kinds). */
  readonly #blockPositions: Map<string, number>;
  /** Rowid of every block's row. */
  readonly #rowids: Map<string, number>;
  // Rows to write from the state (or delete, when the state no longer has them).
  readonly #workspaces = new Set<string>();
  readonly #tabs = new Set<string>();
  readonly #blocks = new Set<string>();
  /** Blocks whose meta alone changed: their UPDATE leaves the (tab_id, position) index alone. */
  readonly #blockMetas = new Set<string>();
  // Parents whose children's order changed: the children that moved (with
  // where to look for each), or null when any may have (renumber by order).
  readonly #tabOrder = new Map<string, Map<string, number> | null>();
  readonly #blockOrder = new Map<string, Map<string, number> | null>();
  // Deleted parents whose children go with them.
  readonly #goneWorkspaces = new Set<string>();
  readonly #goneTabs = new Set<string>();
  readonly #upsertWorkspace: StatementSync;
  readonly #deleteWorkspace: StatementSync;
  readonly #upsertTab: StatementSync;
  readonly #deleteTab: StatementSync;
  readonly #moveTab: StatementSync;
  readonly #tabsOf: StatementSync;
  readonly #upsertBlock: StatementSync;
  readonly #deleteBlock: StatementSync;
  readonly #moveBlock: StatementSync;
  readonly #setMetaAt: StatementSync;
  readonly #db: DatabaseSync;
  readonly #setBlockMetas: StatementSync[] = [];
  readonly #setMetaOf: StatementSync;
  readonly #blocksOf: StatementSync;

  constructor(db: DatabaseSync, placement: Placement) {
    this.#db = db;
    this.#tabPositions = placement.tabPositions;
    this.#blockPositions = placement.blockPositions;
    this.#rowids = placement.rowids;
    this.#upsertWorkspace = db.prepare(
      `INSERT INTO workspaces (workspace_id, name, active_tab_id, meta) VALUES (?, ?, ?, ?)
       ON CONFLICT (workspace_id) DO UPDATE SET
         name = excluded.name, active_tab_id = excluded.active_tab_id, meta = excluded.meta`,
    );
    this.#deleteWorkspace = db.prepare("DELETE FROM workspaces WHERE workspace_id = ?");
    this.#upsertTab = db.prepare(
      `INSERT INTO tabs (tab_id, workspace_id, position, name, meta) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (tab_id) DO UPDATE SET workspace_id = excluded.workspace_id,
         position = excluded.position, name = excluded.name, meta = excluded.meta`,
    );
    this.#deleteTab = db.prepare("DELETE FROM tabs WHERE tab_id = ?");
    this.#moveTab = db.prepare("UPDATE tabs SET position = ? WHERE tab_id = ?");
    // A parent's rows, but those of the children it has now (given as a
    // JSON list): a parent deleted and created again under its id in one
    // turn keeps only its new children.
    this.#tabsOf = db.prepare(
      `DELETE FROM tabs WHERE workspace_id = ?1
         AND tab_id NOT IN (SELECT value FROM json_each(?2)) RETURNING tab_id`,
    );
    this.#upsertBlock = db.prepare(
      `INSERT INTO blocks (block_id, tab_id, position, meta) VALUES (?, ?, ?, ?)
       ON CONFLICT (block_id) DO UPDATE SET
         tab_id = excluded.tab_id, position = excluded.position, meta = excluded.meta
       RETURNING rowid AS row_id`,
    );
    this.#deleteBlock = db.prepare("DELETE FROM blocks WHERE block_id = ?");
    this.#moveBlock = db.prepare("UPDATE blocks SET position = ? WHERE block_id = ?");
    this.#blocksOf = db.prepare(
      `DELETE FROM blocks WHERE tab_id = ?1
         AND block_id NOT IN (SELECT value FROM json_each(?2)) RETURNING block_id`,
    );
    // By rowid, and only if the row there is still this block's: a rowid
    // that went stale would miss (0 changes) rather than hit another row.
    this.#setMetaAt = db.prepare("UPDATE blocks SET meta = ? WHERE rowid = ? AND block_id = ?");
    this.#setMetaOf = db.prepare("UPDATE blocks SET meta = ? WHERE block_id = ?");
  }

  /** Whether any row waits to be written. */
  get pending(): boolean {
    return this.#workspaces.size + this.#tabs.size + this.#blocks.size + this.#blockMetas.size +
        this.#tabOrder.size + this.#blockOrder.size > 0;
  }

  /** Notes the rows `event` changes (each event says exactly what it touched). */
  track(event: LoggedEvent): void {
    switch (event.event) {
      case "workspace_created":
      case "workspace_renamed":
      case "workspace_meta_updated":
      case "active_tab_changed":
        this.#workspaces.add(event.workspace_id);
        break;
      case "workspace_deleted":
        this.#workspaces.add(event.workspace_id);
        this.#goneWorkspaces.add(event.workspace_id);
        for (const id of event.block_ids) this.#blocks.add(id);
        break;
      case "tab_created":
        this.#tabs.add(event.tab_id);
        moved(this.#tabOrder, event.workspace_id, event.tab_id, AT_END);
        break;
      case "tab_deleted":
        // The workspace's active tab may have been this one.
        this.#workspaces.add(event.workspace_id);
        this.#tabs.add(event.tab_id);
        this.#goneTabs.add(event.tab_id);
        for (const id of event.block_ids) this.#blocks.add(id);
        break;
      case "tab_renamed":
      case "tab_meta_updated":
        this.#tabs.add(event.tab_id);
        break;
      case "tab_reordered":
        moved(this.#tabOrder, event.workspace_id, event.tab_id, event.new_index);
        break;
      case "tabs_reordered_bulk":
        this.#tabOrder.set(event.workspace_id, null);
        break;
      case "tab_moved":
        this.#workspaces.add(event.src_workspace_id);
        this.#workspaces.add(event.dst_workspace_id);
        this.#tabs.add(event.tab_id);
        moved(this.#tabOrder, event.dst_workspace_id, event.tab_id, event.dst_index);
        break;
      case "block_created":
        this.#blocks.add(event.block_id);
        moved(this.#blockOrder, event.tab_id, event.block_id, AT_END);
        break;
      case "block_deleted":
        this.#blocks.add(event.block_id);
        break;
      case "block_meta_updated":
        // The hot path of a busy client: only the meta column is rewritten.
        this.#blockMetas.add(event.block_id);
        break;
      case "block_moved":
        this.#blocks.add(event.block_id);
        moved(this.#blockOrder, event.dst_tab_id, event.block_id, event.dst_index);
        break;
      case "registered":
      case "pong":
      case "process_spawned":
      case "process_exited":
      case "lifecycle_phase_changed":
        // Not tree rows: they live in the event log only.
        break;
      default: {
        // A tree event forgotten here would be logged but never written to
        // its row, and lost on restart; this makes it a compile error.
        const unhandled: never = event;
        throw new Error(`track: unknown event ${(unhandled as LoggedEvent).event}`);
      }
    }
  }

  /**
   * Inside the commit's transaction: writes every tracked row from `tree`
   * (the state after the turn) and deletes the rows of entities it no
   * longer has, with the children of deleted parents. Then forgets them.
   */
  write(tree: Tree): void {
    this.#order(tree);
    const tabPositions = this.#tabPositions;
    const blockPositions = this.#blockPositions;
    for (const id of this.#workspaces) {
      const w = tree.workspaces.get(id);
      if (w === undefined) this.#deleteWorkspace.run(id);
      else this.#upsertWorkspace.run(id, w.name, w.activeTabId, encodeMeta(w.meta));
    }
    for (const id of this.#tabs) {
      const t = tree.tabs.get(id);
      if (t === undefined) {
        this.#deleteTab.run(id);
        tabPositions.delete(id);
      } else {
        this.#upsertTab.run(id, t.workspaceId, tabPositions.get(id)!, t.name, encodeMeta(t.meta));
      }
    }
    this.#writeMetas(tree);
    for (const id of this.#blocks) {
      const b = tree.blocks.get(id);
      if (b === undefined) {
        this.#deleteBlock.run(id);
        blockPositions.delete(id);
        this.#rowids.delete(id);
      } else {
        const row = this.#upsertBlock.get(id, b.tabId, blockPositions.get(id)!, encodeMeta(b.meta));
        this.#rowids.set(id, (row as { row_id: number }).row_id);
      }
    }
    // Rows written above carry their parent as of the end of the turn, so
    // these deletes only take children still filed under a deleted parent
    // that it does not have now (it may exist again under the same id).
    for (const id of this.#goneWorkspaces) {
      const now = JSON.stringify(tree.workspaces.get(id)?.tabIds ?? []);
      for (const row of this.#tabsOf.all(id, now) as { tab_id: string }[]) {
        tabPositions.delete(row.tab_id);
        this.#goneTabs.add(row.tab_id);
      }
    }
    for (const id of this.#goneTabs) {
      const now = JSON.stringify(tree.tabs.get(id)?.blockIds ?? []);
      for (const row of this.#blocksOf.all(id, now) as { block_id: string }[]) {
        blockPositions.delete(row.block_id);
        this.#rowids.delete(row.block_id);
      }
    }
    this.#forget();
  }

  /**
   * The meta column of every block whose meta alone changed (the hot path:
   * a host streaming titles and cwds), each row found by its rowid. Short
   * metas go up to {@linkcode METAS_PER_UPDATE} rows per statement
   * (\`UPDATE ... FROM (VALUES ...)\`), since a statement run costs about
   * as much as a short row; a long meta (over {@linkcode JOINED_META_CHARS})
   * gets its own statement, since the join's cost per row grows with the
   * value and passed a statement run's (measured with 40-byte and 1 KB
   * metas, 64 and 256 rows a turn). A row whose rowid went stale is missed
   * (the \`block_id\` is checked too) and written by \`block_id\` instead.
   */
  #writeMetas(tree: Tree): void {
    const args: (string | number)[] = [];
    for (const id of this.#blockMetas) {
      if (this.#blocks.has(id)) continue; // written whole below
      const b = tree.blocks.get(id);
      // A block deleted later in the turn is in #blocks (its delete event names it).
      if (b === undefined) continue;
      const meta = encodeMeta(b.meta);
      const rowid = this.#rowids.get(id);
      if (rowid === undefined) this.#setMetaOf.run(meta, id);
      else if (meta.length > JOINED_META_CHARS) this.#setMeta(meta, rowid, id);
      else args.push(rowid, id, meta);
      if (args.length === 3 * METAS_PER_UPDATE) this.#flushMetas(args);
    }
    if (args.length > 0) this.#flushMetas(args);
  }

  #setMeta(meta: string, rowid: number, id: string): void {
    if (this.#setMetaAt.run(meta, rowid, id).changes === 0) this.#setMetaOf.run(meta, id);
  }

  #flushMetas(args: (string | number)[]): void {
    const rows = args.length / 3;
    const changed = (this.#setBlockMetas[rows] ??= this.#db.prepare(
      `UPDATE blocks SET meta = v.column3 FROM (VALUES ${
        Array.from({ length: rows }, () => "(?, ?, ?)").join(", ")
      }) AS v WHERE blocks.rowid = v.column1 AND blocks.block_id = v.column2`,
    )).run(...args).changes;
    if (changed !== rows) {
      for (let k = 0; k < args.length; k += 3) this.#setMetaOf.run(args[k + 2], args[k + 1]);
    }
    args.length = 0;
  }

  /** Forgets what was tracked (after a write, or when the turn was rolled back). */
  #forget(): void {
    this.#workspaces.clear();
    this.#tabs.clear();
    this.#blocks.clear();
    this.#blockMetas.clear();
    this.#tabOrder.clear();
    this.#blockOrder.clear();
    this.#goneWorkspaces.clear();
    this.#goneTabs.clear();
  }

  /**
   * New positions for the children of every parent whose order changed:
   * rows written anyway take theirs in the upsert, the others get an
   * UPDATE of `position` alone.
   */
  #order(tree: Tree): void {
    const tabPositions = this.#tabPositions;
    const blockPositions = this.#blockPositions;
    // A row about to be written must have a position: a new child is placed
    // with the others that moved in its parent; any other without one would
    // be a bug, and renumbering its parent is the safe answer.
    const unplaced = (
      positions: Map<string, number>,
      order: Map<string, Map<string, number> | null>,
      parent: string,
      id: string,
    ) => !positions.has(id) && order.get(parent)?.has(id) !== true;
    for (const id of this.#tabs) {
      const t = tree.tabs.get(id);
      if (t !== undefined && unplaced(tabPositions, this.#tabOrder, t.workspaceId, id)) {
        this.#tabOrder.set(t.workspaceId, null);
      }
    }
    for (const id of this.#blocks) {
      const b = tree.blocks.get(id);
      if (b !== undefined && unplaced(blockPositions, this.#blockOrder, b.tabId, id)) {
        this.#blockOrder.set(b.tabId, null);
      }
    }
    for (const [wsId, movedTabs] of this.#tabOrder) {
      const ws = tree.workspaces.get(wsId);
      if (ws === undefined) continue;
      for (const [id, p] of placed(ws.tabIds, movedTabs, (t) => tabPositions.get(t))) {
        tabPositions.set(id, p);
        if (!this.#tabs.has(id)) this.#moveTab.run(p, id);
      }
    }
    for (const [tabId, movedBlocks] of this.#blockOrder) {
      const tab = tree.tabs.get(tabId);
      if (tab === undefined) continue;
      for (const [id, p] of placed(tab.blockIds, movedBlocks, (b) => blockPositions.get(b))) {
        blockPositions.set(id, p);
        if (!this.#blocks.has(id)) this.#moveBlock.run(p, id);
      }
    }
  }
}

/** Notes that `child` moved within (or into) `parent`, unless all of its children are renumbered. */
function moved(
  order: Map<string, Map<string, number> | null>,
  parent: string,
  child: string,
  hint: number,
): void {
  const known = order.get(parent);
  if (known === null) return;
  if (known === undefined) order.set(parent, new Map([[child, hint]]));
  else known.set(child, hint);
}

/**
 * New positions for a parent's children: only around the ones that moved
 * when that is enough (the common append and move, O(moved)), else by
 * renumbering along the whole order.
 */
function placed(
  ids: readonly string[],
  movedIds: ReadonlyMap<string, number> | null,
  positionOf: (id: string) => number | undefined,
): [string, number][] {
  return (movedIds === null ? null : placeMoved(ids, movedIds, positionOf)) ??
    placeInOrder(ids, positionOf);
}
