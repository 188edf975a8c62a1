// Sparse positions of ordered children (srv/server/_positions.ts): one row per rule,
// then a random walk that checks order and the number of rows rewritten.
import assert from "node:assert/strict";
import { AT_END, placeInOrder, placeMoved, POSITION_STEP } from "../../srv/server/_positions.ts";
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

Deno.test("placeMoved: only the moved children are written, between unmoved neighbours", () => {
  const now = new Map([["a", S], ["b", 2 * S], ["c", 3 * S]]);
  const at = (ids: string[], moved: [string, number][]) =>
    placeMoved(ids, new Map(moved), (id) => now.get(id));
  assert.deepEqual(at(["a", "b", "c", "x"], [["x", AT_END]]), [["x", 4 * S]], "append");
  assert.deepEqual(at(["a", "c", "b"], [["c", 1]]), [["c", S + S / 2]], "move");
  assert.deepEqual(at(["x", "a", "b", "c"], [["x", 0]]), [["x", 0]], "prepend");
  assert.deepEqual(
    at(["a", "x", "y", "b", "c"], [["y", AT_END], ["x", AT_END]]),
    [["x", S + Math.floor(S / 3)], ["y", S + Math.floor((2 * S) / 3)]],
    "a run of new children shares its gap, whatever the hints said",
  );
  now.set("b", S + 1);
  assert.equal(at(["a", "x", "b"], [["x", 1]]), null, "no integer left: the caller renumbers");
});

Deno.test("placeMoved: random turns of appends and moves keep order, writing only what moved", () => {
  const rnd = prng(7);
  const pos = new Map<string, number>();
  const ids: string[] = [];
  let written = 0;
  let changes = 0;
  let fallbacks = 0;
  for (let turn = 0; turn < 600; turn++) {
    // Several changes per turn, as a pipelined client makes them.
    const moved = new Map<string, number>();
    for (let k = 1 + Math.floor(rnd() * 6); k > 0; k--) {
      changes++;
      if (ids.length < 3 || rnd() < 0.4) {
        const id = `c${turn}-${k}`;
        ids.push(id);
        moved.set(id, AT_END);
      } else if (rnd() < 0.15) {
        const [gone] = ids.splice(Math.floor(rnd() * ids.length), 1);
        moved.delete(gone);
      } else {
        const [id] = ids.splice(Math.floor(rnd() * ids.length), 1);
        const index = Math.floor(rnd() * (ids.length + 1));
        ids.splice(index, 0, id);
        moved.set(id, index);
      }
    }
    const local = placeMoved(ids, moved, (id) => pos.get(id));
    if (local === null) fallbacks++;
    const placed = local ?? placeInOrder(ids, (id) => pos.get(id));
    written += placed.length;
    for (const [id, p] of placed) pos.set(id, p);
    for (let i = 1; i < ids.length; i++) {
      assert.ok(pos.get(ids[i - 1])! < pos.get(ids[i])!, `turn ${turn}: order broken at ${i}`);
    }
    assert.ok(ids.every((id) => Number.isSafeInteger(pos.get(id))));
  }
  assert.ok(written <= changes * 1.5, `${written} rows written for ${changes} changes`);
  assert.ok(fallbacks < 60, `${fallbacks} renumberings in 600 turns`);
});
