/**
 * The runtime's floor: what any server written in Deno pays to speak srv's
 * protocol, without the protocol's rules. The bench runs it beside srv in
 * the same loops, so it can tell a missed target that no server in this
 * runtime could meet from one whose gap is in srv's part (issue 16's "what
 * the runtime itself costs and why it cannot be met"; `FloorCheck` in
 * `_report.ts` says how each kind of ratio is read).
 *
 * Per read it does only what the protocol makes every server do:
 * - UTF-8 check and line split (srv's own `LineSplitter.pushText`, as srv);
 * - `JSON.parse` of every line (any field order, spacing or escaping is
 *   valid JSON, so a correct server parses);
 * - one event object per command, serialized with `JSON.stringify`;
 * - the turn's events UTF-8 encoded once and the same bytes written to
 *   every connection (one write per connection per turn, as srv);
 * - with `--data-dir`: per turn one SQLite transaction with the turn's
 *   lines as one row plus the row of each block whose meta changed (the
 *   tree rows in the transaction that commits their events, docs/PROTOCOL.md
 *   §8), srv's pragmas, no retention.
 *
 * And nothing else: no validation, no state beyond a version counter, no
 * merge (a block's row gets the patch as sent), no size caps, no ring, no
 * backpressure, no registration rules. It answers what the bench's load
 * process sends (`register`, `ping`, `create_*`, `update_block_meta`); any
 * other command, or a line that is not JSON, ends its connection.
 *
 * Usage: `deno run -A bench/floor_server.ts --socket PATH [--data-dir DIR]`
 * prints `floor ready socket=<path> pid=<pid>` once it accepts connections.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serveUnix } from "./_listen.ts";
import { DatabaseSync } from "node:sqlite";
import { LineSplitter } from "@srv/srv/core";

const encoder = new TextEncoder();
const READ_BUFFER = 64 * 1024;

/** One connection's output: turns' bytes in order, one write loop. */
class Out {
  readonly conn: Deno.Conn;
  readonly #queue: Uint8Array[] = [];
  #writing = false;
  closed = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.#queue.push(bytes);
    if (!this.#writing) this.#drain();
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      for (let bytes = this.#queue.shift(); bytes !== undefined; bytes = this.#queue.shift()) {
        let offset = 0;
        while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
      }
    } catch {
      this.closed = true;
    }
    this.#writing = false;
  }
}

/** Rows per meta UPDATE statement, as srv writes them (srv/server/_tree_tables.ts). */
const METAS_PER_UPDATE = 64;

/** The minimum durable write of a turn (see the module doc). */
class Store {
  readonly #db: DatabaseSync;
  readonly #batch;
  readonly #block;
  /** UPDATE statements by row count: meta rows by rowid, many per statement. */
  readonly #metas: ReturnType<DatabaseSync["prepare"]>[] = [];
  readonly #rowids = new Map<string, number>();
  /** Blocks whose meta changed this turn, by rowid (the newest meta wins, encoded once). */
  readonly #dirty = new Map<number, unknown>();

  constructor(dir: string) {
    Deno.mkdirSync(dir, { recursive: true });
    this.#db = new DatabaseSync(`${dir}/floor.sqlite`);
    // srv's pragmas (srv/server/_store_open.ts).
    this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec("PRAGMA synchronous = NORMAL");
    this.#db.exec("PRAGMA locking_mode = EXCLUSIVE");
    this.#db.exec("PRAGMA wal_autocheckpoint = 10000");
    this.#db.exec(`
      CREATE TABLE batches (
        first_version INTEGER PRIMARY KEY, last_version INTEGER NOT NULL,
        events INTEGER NOT NULL, lines TEXT NOT NULL
      ) STRICT;
      CREATE TABLE blocks (block_id TEXT PRIMARY KEY, meta TEXT NOT NULL) STRICT;
    `);
    this.#batch = this.#db.prepare(
      "INSERT INTO batches (first_version, last_version, events, lines) VALUES (?, ?, ?, ?)",
    );
    this.#block = this.#db.prepare("INSERT INTO blocks (block_id, meta) VALUES (?, '{}')");
  }

  /** A block created this turn: its row goes in with the turn (rowid known at once). */
  created(blockId: string): void {
    const { lastInsertRowid } = this.#block.run(blockId);
    this.#rowids.set(blockId, Number(lastInsertRowid));
  }

  patched(blockId: string, meta: unknown): void {
    const rowid = this.#rowids.get(blockId);
    if (rowid !== undefined) this.#dirty.set(rowid, meta);
  }

  /** Opens the turn's transaction (before anything of the turn is written). */
  begin(): void {
    if (!this.#db.isTransaction) this.#db.exec("BEGIN");
  }

  commit(first: number, last: number, lines: string): void {
    this.begin();
    this.#batch.run(first, last, last - first + 1, lines);
    const args: (string | number)[] = [];
    for (const [rowid, meta] of this.#dirty) {
      args.push(rowid, JSON.stringify(meta));
      if (args.length === 2 * METAS_PER_UPDATE) this.#flush(args);
    }
    if (args.length > 0) this.#flush(args);
    this.#db.exec("COMMIT");
    this.#dirty.clear();
  }

  #flush(args: (string | number)[]): void {
    const rows = args.length / 2;
    (this.#metas[rows] ??= this.#db.prepare(
      `UPDATE blocks SET meta = v.column2 FROM (VALUES ${
        Array.from({ length: rows }, () => "(?, ?)").join(", ")
      }) AS v WHERE blocks.rowid = v.column1`,
    )).run(...args);
    args.length = 0;
  }
}

function serve(store: Store | null): (conn: Deno.Conn) => Promise<void> {
  const everyone = new Set<Out>();
  let version = 0;
  let first = 1;
  let turn = "";
  let scheduled = false;

  const endTurn = () => {
    scheduled = false;
    if (turn === "") return;
    store?.commit(first, version, turn);
    const bytes = encoder.encode(turn);
    turn = "";
    first = version + 1;
    for (const out of everyone) out.send(bytes);
  };

  const handle = (line: string | Uint8Array) => {
    if (typeof line !== "string") return; // bad UTF-8: srv answers privately; the bench never sends it
    // deno-lint-ignore no-explicit-any
    const c: any = JSON.parse(line);
    let event: Record<string, unknown>;
    switch (c.cmd) {
      case "ping":
        event = { event: "pong", nonce: c.nonce, version: ++version };
        break;
      case "update_block_meta":
        event = {
          event: "block_meta_updated",
          block_id: c.block_id,
          meta_patch: c.meta_patch,
          version: ++version,
        };
        store?.patched(c.block_id, c.meta_patch);
        break;
      case "register":
        event = { event: "registered", kind: c.kind, pid: c.pid, version: ++version };
        break;
      case "create_workspace":
      case "create_tab":
      case "create_block": {
        const kind = c.cmd.slice("create_".length);
        const id = crypto.randomUUID();
        event = { event: `${kind}_created`, [`${kind}_id`]: id, version: ++version };
        if (kind === "block") {
          store?.begin();
          store?.created(id);
        }
        break;
      }
      default:
        // Not what the bench sends: end the connection (see the module doc).
        throw new Error(`the floor does not answer ${c.cmd}`);
    }
    turn += JSON.stringify(event) + "\n";
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(endTurn);
    }
  };

  return async (conn) => {
    const out = new Out(conn);
    everyone.add(out);
    const splitter = new LineSplitter();
    const buf = new Uint8Array(READ_BUFFER);
    try {
      while (!out.closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (!splitter.pushText(buf.subarray(0, n), handle)) break;
      }
    } finally {
      // Ended, or the client went away (serveUnix closes the connection).
      everyone.delete(out);
      out.closed = true;
    }
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { socket: { type: "string" }, "data-dir": { type: "string" } },
    strict: true,
  });
  const path = values.socket;
  if (!path) {
    Deno.stderr.writeSync(
      encoder.encode("usage: floor_server.ts --socket PATH [--data-dir DIR]\n"),
    );
    Deno.exit(2);
  }
  const dir = values["data-dir"];
  const handle = serve(dir === undefined ? null : new Store(dir));
  await serveUnix("floor", path, handle);
}

if (import.meta.main) await main();
