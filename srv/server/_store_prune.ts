/**
 * Retention of a `DurableEventLog`: which of the oldest batches go, and
 * their DELETE, inside the commit's transaction. The oldest rows are read
 * ahead a page at a time and kept: only these deletes change the front of
 * the `batches` table (new batches go at its end), so the page stays true
 * until it is used up, and a prune costs one DELETE instead of a SELECT, a
 * DELETE and a `min()` (the SELECT was most of it: node:sqlite's `iterate`
 * costs several µs a row).
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";

/** Rows of the oldest batches read ahead at once. */
const PAGE_ROWS = 256;

/** One stored batch, as far as retention needs it. */
interface Batch {
  readonly first_version: number;
  readonly events: number;
  readonly bytes: number;
}

/** What one prune deleted. */
export interface Pruned {
  /** Events deleted. */
  readonly gone: number;
  /** UTF-8 bytes of their lines. */
  readonly goneBytes: number;
  /** The oldest version still stored (null: none). */
  readonly oldest: number | null;
}

/**
 * Deletes the oldest batches of a store's `batches` table within a budget.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DatabaseSync } from "node:sqlite";
 * import { Pruner } from "./_store_prune.ts";
 *
 * const db = new DatabaseSync(":memory:");
 * db.exec(`CREATE TABLE batches (first_version INTEGER PRIMARY KEY,
 *   last_version INTEGER NOT NULL, events INTEGER NOT NULL, lines TEXT NOT NULL)`);
 * for (const v of [1, 3, 5]) {
 *   db.prepare("INSERT INTO batches VALUES (?, ?, 2, 'ab\ncd')").run(v, v + 1);
 * }
 * const pruner = new Pruner(db);
 * // 3 events over the count: whole batches only, so one batch (2 events) goes.
 * assert.deepEqual(pruner.prune(3, 0, 3), { gone: 2, goneBytes: 5, oldest: 3 });
 * ```
 */
export class Pruner {
  readonly #page: StatementSync;
  readonly #deleteThrough: StatementSync;
  readonly #minFirst: StatementSync;
  /** The oldest batches not yet deleted, read ahead; `#at` is the next one. */
  #front: Batch[] = [];
  #at = 0;

  constructor(db: DatabaseSync) {
    // octet_length of the column reads the row's header, not its overflow
    // pages (length(CAST(...)) loaded every pruned batch's lines).
    this.#page = db.prepare(
      `SELECT first_version, events, octet_length(lines) AS bytes FROM batches
       WHERE first_version > ? ORDER BY first_version LIMIT ${PAGE_ROWS}`,
    );
    this.#deleteThrough = db.prepare("DELETE FROM batches WHERE first_version <= ?");
    this.#minFirst = db.prepare("SELECT min(first_version) AS lo FROM batches");
  }

  /**
   * Inside a transaction: deletes whole batches, oldest first, while they
   * fit: over the byte retention (`excessBytes > 0`) any batch, over the
   * count only batches that keep the count at the retention (`excess`), at
   * most `budget` events (but at least one batch). Null when none went.
   */
  prune(excess: number, excessBytes: number, budget: number): Pruned | null {
    let lastGone: number | null = null;
    let gone = 0;
    let goneBytes = 0;
    while (true) {
      const batch = this.#next();
      if (batch === undefined) break;
      if (excessBytes <= 0 && batch.events > excess) break;
      if (lastGone !== null && batch.events > budget) break;
      this.#at++;
      excess -= batch.events;
      excessBytes -= batch.bytes;
      budget -= batch.events;
      gone += batch.events;
      goneBytes += batch.bytes;
      lastGone = batch.first_version;
      if (budget <= 0) break;
    }
    if (lastGone === null) return null;
    this.#deleteThrough.run(lastGone);
    const oldest = this.#next()?.first_version ??
      (this.#minFirst.get() as { lo: number | null }).lo;
    return { gone, goneBytes, oldest };
  }

  /** Forgets what was read ahead: the transaction that deleted rows rolled back. */
  reset(): void {
    this.#front = [];
    this.#at = 0;
  }

  /** The oldest batch not yet deleted, reading the next page when needed. */
  #next(): Batch | undefined {
    if (this.#at < this.#front.length) return this.#front[this.#at];
    const after = this.#front.at(-1)?.first_version ?? -1;
    this.#front = this.#page.all(after) as unknown as Batch[];
    this.#at = 0;
    return this.#front[0];
  }
}
