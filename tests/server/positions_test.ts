// Sparse positions of ordered children (srv/server/_positions.ts): one row per rule,
// then a random walk that checks order and the number of rows rewritten.
import assert from "node:assert/strict";
import { placeInOrder, POSITION_STEP } from "../../srv/server/_positions.ts";
import { prng } from "../_random_commands.ts";

const S = POSITION_STEP;

function place(ids: string[], now: Record<string, number>): Record<string, number> {
  return Object.fromEntries(placeInOrder(ids, (id) => now[id]));
}

Deno.test("placeInOrder: one row per rule", () => {
  const rows: [string, string[], Record<string, number>, Record<string, number>][] = [
    ["children already in order: nothing to write", ["a", "b"], { a: S, b: 2 * S }, {}],
    ["first child of an empty parent", ["a"], {}, { a: S }],
    ["appending: one row, one step after the last", ["a", "b"], { a: S }, { b: 2 * S }],
    ["prepending: one row, one step before the first", ["z", "a"], { a: S }, { z: 0 }],
    ["moving one child: only it moves, into the middle of the gap", ["a", "c", "b"], {
      a: S,
      b: 2 * S,
      c: 3 * S,
    }, { c: S + S / 2 }],
    ["a moved-in child takes the gap between its new neighbours", ["a", "x", "b"], {
      a: 10,
      b: 20,
    }, { x: 15 }],
    ["several new children share one gap evenly", ["a", "x", "y", "b"], { a: 0, b: 30 }, {
      x: 10,
      y: 20,
    }],
    ["no integer left in the gap: everything is renumbered", ["a", "x", "b"], { a: 1, b: 2 }, {
      a: S,
      x: 2 * S,
      b: 3 * S,
    }],
  ];
  for (const [rule, ids, now, expected] of rows) assert.deepEqual(place(ids, now), expected, rule);
});

Deno.test("placeInOrder: random moves keep order and rewrite about one row each", () => {
  const rnd = prng(5);
  const pos = new Map<string, number>();
  let ids: string[] = [];
  let written = 0;
  let renumbers = 0;
  for (let step = 0; step < 5000; step++) {
    const r = rnd();
    if (ids.length < 3 || r < 0.2) ids.push(`c${step}`);
    else if (r < 0.3) ids.splice(Math.floor(rnd() * ids.length), 1);
    else {
      const [moved] = ids.splice(Math.floor(rnd() * ids.length), 1);
      ids.splice(Math.floor(rnd() * (ids.length + 1)), 0, moved);
    }
    const changes = placeInOrder(ids, (id) => pos.get(id));
    if (changes.length > 1) renumbers++;
    written += changes.length;
    for (const [id, p] of changes) pos.set(id, p);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(pos.get(ids[i - 1])! < pos.get(ids[i])!, `step ${step}: order broken at ${i}`);
    }
    assert.ok(ids.every((id) => Number.isSafeInteger(pos.get(id))));
    ids = [...ids];
  }
  assert.ok(written < 5000 * 1.5, `${written} rows written for 5000 changes`);
  assert.ok(renumbers < 200, `${renumbers} renumberings`);
});
