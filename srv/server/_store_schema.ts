/**
 * The store's schema: its SQLite `application_id` and version, the
 * forward-only migrations (schema 1's checkpoints to schema 2's tables),
 * and {@linkcode StoreError}.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { parseJson } from "../core/codec.ts";
import type { Json } from "../core/protocol.ts";
import type { Tab, Workspace } from "../core/state.ts";
import { insertTree, type Tree, TREE_TABLES_SQL } from "./_tree_tables.ts";

/** `PRAGMA application_id` of an srv store: "srv1" in ASCII. */
export const STORE_APPLICATION_ID = 0x73727631;
/** The schema version this srv writes; older stores are migrated forward. */
export const STORE_SCHEMA_VERSION = 2;
/** The store cannot be used; the message names the path and the reason. */
export class StoreError extends Error {
  /** The store's path. */
  readonly path: string;
  /** A store problem at `path`. */
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
    this.path = path;
  }
}
/** A step forward from schema `to - 1`; runs inside the migration's transaction. */
interface Migration {
  readonly to: number;
  readonly run: (db: DatabaseSync, path: string) => void;
}

/** Forward-only migrations; `to` is the schema version after each. */
const MIGRATIONS: readonly Migration[] = [
  {
    to: 1,
    // One row per committed turn: a pipelined client costs one INSERT per
    // batch, not per event. `lines` holds the events' JSON, one per line,
    // oldest first, exactly as broadcast.
    run: (db) =>
      db.exec(`
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
    `),
  },
  {
    to: 2,
    // The tree moves from checkpoints (the whole state as one JSON string,
    // in srv's internal shape) to one row per entity. The latest checkpoint
    // becomes the rows; events after it stay in \`batches\` and are replayed
    // on top by the open that follows (tables_version says where the tables
    // stand). \`meta\` becomes \`scalars\`, to leave "meta" to the rows' column.
    run: (db, path) => {
      db.exec(TREE_TABLES_SQL);
      db.exec("ALTER TABLE meta RENAME TO scalars");
      const checkpoint = db.prepare(
        "SELECT version, state FROM checkpoints ORDER BY version DESC LIMIT 1",
      ).get() as { version: number; state: string } | undefined;
      let nextClientId = 1;
      if (checkpoint !== undefined) {
        const old = schema1Checkpoint(checkpoint.state, path, checkpoint.version);
        insertTree(db, old.tree);
        nextClientId = old.nextClientId;
      }
      db.prepare("INSERT INTO scalars (key, value) VALUES ('next_client_id', ?)").run(nextClientId);
      db.prepare("INSERT INTO scalars (key, value) VALUES ('tables_version', ?)")
        .run(checkpoint?.version ?? 0);
      db.exec("DROP TABLE checkpoints");
    },
  },
];

/**
 * The tree of a schema-1 checkpoint (`{eventVersion, nextClientId,
 * workspaces, tabs, blocks}` in srv's internal camelCase shape). Only the
 * migration reads it, once.
 */
function schema1Checkpoint(json: string, path: string, version: number) {
  try {
    const data = parseJson(json) as {
      nextClientId: number;
      workspaces: Workspace[];
      tabs: Tab[];
      blocks: { id: string; tabId: string; meta: Json }[];
    };
    return {
      nextClientId: data.nextClientId,
      tree: {
        workspaces: new Map(data.workspaces.map((w) => [w.id, w])),
        tabs: new Map(data.tabs.map((t) => [t.id, t])),
        blocks: new Map(data.blocks.map((b) => [b.id, b])),
      } satisfies Tree,
    };
  } catch (e) {
    throw new StoreError(
      path,
      `the store ${path} is corrupt: checkpoint v${version} cannot be read (${message(e)})`,
      { cause: e },
    );
  }
}
/** An error's message, or the thrown value as text. */
export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
/** The value of a numeric `PRAGMA` (`user_version`, `freelist_count`, ...). */
export function pragmaNumber(db: DatabaseSync, name: string): number {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, number>;
  return Number(Object.values(row)[0]);
}

/** Migrates the store to this schema in one transaction; returns the schema it had. */
export function migrate(db: DatabaseSync, path: string): number {
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
  if (pending.length === 0) return schema;
  db.exec("BEGIN IMMEDIATE");
  try {
    for (const m of pending) m.run(db, path);
    db.exec(`PRAGMA application_id = ${STORE_APPLICATION_ID}`);
    db.exec(`PRAGMA user_version = ${STORE_SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (e) {
    db.exec("ROLLBACK");
    if (e instanceof StoreError) throw e;
    throw new StoreError(
      path,
      `migrating the store ${path} from schema ${schema} to ${STORE_SCHEMA_VERSION} failed: ${
        message(e)
      }`,
      { cause: e },
    );
  }
  return schema;
}
