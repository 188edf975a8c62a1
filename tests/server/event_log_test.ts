// Event log unit tests: docs/PROTOCOL.md §6 (ring of 4096, `since` strictly
// greater, truncation flag).
import assert from "node:assert/strict";
import { DEFAULT_RING_CAPACITY, EventLog, type LogEntry } from "../../srv/core/event_log.ts";
import { DurableEventLog } from "../../srv/server/durable_event_log.ts";
import { initialState } from "../../srv/core/state.ts";
import { U64_MAX } from "../../srv/core/protocol.ts";

function filled(count: number, capacity?: number, first = 1): EventLog {
  const log = new EventLog(capacity);
  for (let v = first; v < first + count; v++) {
    log.append({ version: v, json: `{"event":"pong","nonce":${v},"version":${v}}` });
  }
  return log;
}

Deno.test("the default ring keeps 4096 events and evicts the oldest", () => {
  assert.equal(DEFAULT_RING_CAPACITY, 4096);
  const log = filled(5000);
  assert.equal(log.size, 4096);
  assert.equal(log.oldest, 5000 - 4096 + 1);
  assert.equal(log.newest, 5000);
  const all = log.eventsSince(0);
  assert.equal(all.length, 4096);
  assert.equal(all[0].version, 905);
  assert.equal(all.at(-1)?.version, 5000);
  all.forEach((e, i) => i > 0 && assert.equal(e.version, all[i - 1].version + 1));
});

Deno.test("eventsSince returns versions strictly greater than since, oldest first", () => {
  const log = filled(10);
  assert.deepEqual(log.eventsSince(7).map((e) => e.version), [8, 9, 10]);
  assert.deepEqual(log.eventsSince(0).length, 10);
  assert.equal(log.eventsSince(3)[0].json, '{"event":"pong","nonce":4,"version":4}');
});

Deno.test("since at or above the newest gives nothing, 2^64-1 included", () => {
  const log = filled(10);
  assert.deepEqual(log.eventsSince(10), []);
  assert.deepEqual(log.eventsSince(11), []);
  assert.deepEqual(log.eventsSince(U64_MAX), []);
  assert.deepEqual(log.eventsSince(9n), [log.eventsSince(9)[0]]);
});

Deno.test("eventsSince works across the ring's wrap point and with gaps in versions", () => {
  const log = new EventLog(4);
  for (const v of [2, 5, 6, 9, 10, 14]) log.append({ version: v, json: String(v) });
  assert.deepEqual(log.eventsSince(0).map((e) => e.version), [6, 9, 10, 14]);
  assert.deepEqual(log.eventsSince(7).map((e) => e.version), [9, 10, 14]);
  assert.deepEqual(log.eventsSince(9).map((e) => e.version), [10, 14]);
});

Deno.test("truncated is true exactly when the oldest retained is above since + 1", () => {
  const log = filled(10, 4); // keeps 7..10
  assert.equal(log.isTruncated(0), true);
  assert.equal(log.isTruncated(5), true);
  assert.equal(log.isTruncated(6), false);
  assert.equal(log.isTruncated(10), false);
  assert.equal(log.isTruncated(U64_MAX), false);
  const whole = filled(3);
  assert.equal(whole.isTruncated(0), false);
});

Deno.test("an empty log is never truncated and returns nothing", () => {
  const log = new EventLog();
  assert.equal(log.isTruncated(0), false);
  assert.equal(log.isTruncated(U64_MAX), false);
  assert.deepEqual(log.eventsSince(0), []);
  assert.deepEqual(log.stats(), { oldest: null, newest: null, retained: 0 });
});

Deno.test("stats report oldest, newest and how many are retained", () => {
  assert.deepEqual(filled(10, 4).stats(), { oldest: 7, newest: 10, retained: 4 });
});

Deno.test("appending a version that does not rise is refused", () => {
  const log = filled(3);
  assert.throws(() => log.append({ version: 3, json: "" }), RangeError);
  assert.throws(() => new EventLog(0), RangeError);
});

Deno.test("big and small events interleaved survive eviction intact (block bookkeeping)", () => {
  const log = new EventLog(5);
  const json = (v: number) =>
    v % 3 === 0
      ? `{"event":"pong","nonce":"${"b".repeat(70_000)}${v}","version":${v}}`
      : `{"event":"pong","nonce":"é${v}","version":${v}}`;
  for (let v = 1; v <= 200; v++) {
    log.append({ version: v, json: json(v) });
    const kept = log.eventsSince(0);
    assert.deepEqual(
      kept.map((e) => e.version),
      Array.from({ length: Math.min(v, 5) }, (_, i) => Math.max(v - 4, 1) + i),
    );
    for (const e of kept) assert.equal(e.json, json(e.version), `v${e.version} after ${v}`);
  }
});

/** The newest entries of `all` whose lines (plus a separator each) fit in `budget` bytes. */
function newestThatFit(all: LogEntry[], budget: number): LogEntry[] {
  let used = 0;
  let first = all.length;
  while (first > 0) {
    const size = new TextEncoder().encode(all[first - 1].json).length + 1;
    if (used + size > budget) break;
    used += size;
    first--;
  }
  return all.slice(first);
}

Deno.test("eventsSince within a byte budget: the newest that fit, and cut when any were left out", () => {
  const log = new EventLog(16);
  for (let v = 1; v <= 10; v++) {
    // Non-ASCII, so the budget is seen to count UTF-8 bytes, not characters.
    log.append({ version: v, json: `{"event":"pong","nonce":${v},"note":"é✓","version":${v}}` });
  }
  const all = log.eventsSince(0);
  const size = new TextEncoder().encode(all[0].json).length + 1;
  assert.notEqual(size, all[0].json.length + 1);
  for (let budget = 0; budget <= 11 * size; budget += 7) {
    for (const since of [0, 4, 9, 10]) {
      const after = all.filter((e) => e.version > since);
      const got = log.eventsSince(since, budget);
      const want = newestThatFit(after, budget);
      assert.deepEqual([...got], want, `since ${since}, budget ${budget}`);
      assert.equal(got.cut === true, want.length < after.length, `cut, budget ${budget}`);
      // The same events as the stored bytes, for a reply built without strings.
      const runs = (got.runs ?? []).map((r) => new TextDecoder().decode(r)).join("");
      assert.equal(runs, want.map((e) => e.json + "\n").join(""));
    }
  }
  assert.equal(log.eventsSince(0).cut, undefined, "no budget, never cut");
});

Deno.test("the durable store keeps to the byte budget too: ring, uncommitted events and disk", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "srv-store-" });
  try {
    const { log } = await DurableEventLog.open({ dataDir, ringCapacity: 10, sync: "normal" });
    const pong = (v: number) =>
      `{"event":"pong","nonce":${v},"pad":"${"ü".repeat(v % 7)}","version":${v}}`;
    let v = 0;
    // Committed batches of 3 on disk, then 15 appended in one turn: more
    // than the ring holds, so some uncommitted events are older than it.
    for (let turn = 0; turn < 12; turn++) {
      for (let i = 0; i < 3; i++) log.append({ version: ++v, json: pong(v) });
      log.commit({ ...initialState(), eventVersion: v });
    }
    for (let i = 0; i < 15; i++) log.append({ version: ++v, json: pong(v) });
    const all = log.eventsSince(0);
    assert.deepEqual(all.map((e) => e.version), Array.from({ length: v }, (_, i) => i + 1));
    for (let budget = 0; budget <= 60 * 60; budget += 97) {
      for (const since of [0, 5, 30, 44]) {
        const after = all.filter((e) => e.version > since);
        const got = log.eventsSince(since, budget);
        const want = newestThatFit(after, budget);
        assert.deepEqual(
          got.map((e) => e.version),
          want.map((e) => e.version),
          `since ${since}, budget ${budget}`,
        );
        assert.deepEqual([...got], want);
        assert.equal(got.cut === true, want.length < after.length);
      }
    }
    log.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
