// The catch-up floor under the shared budget of unread replies (srv/server/
// server.ts, #floorFor), in-process so what the non-readers absorb is
// exactly the pipe's capacity: once clients that never read have spent the
// budget, a client that reads still gets its short catch-up whole, and each
// non-reader gets at most one floor reply, so private output stays bounded.
import assert from "node:assert/strict";
import type { Json } from "../_harness.ts";
import { withServer } from "../_in_process.ts";
import type { MemoryConnection } from "../../srv/transport/memory.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MiB = 1024 * 1024;

/** Reads `conn` until it has seen `count` event_list lines; returns them. */
async function eventLists(conn: MemoryConnection, count: number): Promise<Json[]> {
  const lists: Json[] = [];
  let rest = "";
  while (lists.length < count) {
    const chunk = await conn.read();
    if (chunk === null) throw new Error(`stream ended after ${lists.length} event_lists`);
    rest += decoder.decode(chunk, { stream: true });
    let lf: number;
    while ((lf = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, lf);
      rest = rest.slice(lf + 1);
      if (line.startsWith('{"event":"event_list"')) lists.push(JSON.parse(line));
    }
  }
  return lists;
}

Deno.test("a spent reply budget: a reading client's short catch-up is still whole; each non-reader gets at most one floor reply", async () => {
  await withServer(async (srv, connect) => {
    const c = await connect();
    await c.register(1);
    const ws = (await c.request({ cmd: "create_workspace", name: "w" })).workspace_id;
    const pad = "x".repeat(60 * 1024);
    for (let i = 0; i < 100; i++) {
      await c.request({
        cmd: "update_workspace_meta",
        workspace_id: ws,
        meta_patch: { p: pad + (i % 2) },
      });
    }
    // 4 clients each ask 3 times for the whole ~6 MB history and read
    // nothing; their pipes take 1 KiB each, the rest stays with srv. (Three
    // asks stay under the soft limit, so all are answered before anyone
    // reads: what each got does not depend on the order they are read in.)
    const attackers: MemoryConnection[] = [];
    for (let i = 0; i < 4; i++) {
      const conn = srv.rawConnect(1024);
      attackers.push(conn);
      const register = { cmd: "register", kind: "tool", pid: 100 + i, version: "x" };
      await conn.write(
        encoder.encode(
          JSON.stringify(register) + "\n" + '{"cmd":"get_events","since":0}\n'.repeat(3),
        ),
      );
    }
    for (let seen = 0; seen < attackers.length;) {
      if ((await c.next()).event === "registered") seen++;
    }
    const whole = await c.request({ cmd: "get_events", since: 0 });
    assert.equal(whole.truncated, true, "the budget is spent: a long catch-up is cut");
    const recent = await c.request({ cmd: "get_events", since: whole.version - 3 });
    assert.equal(recent.truncated, false, "a short catch-up is whole all the same");
    assert.ok(recent.events.length > 0);

    let total = 0;
    const substantial: number[] = [];
    for (const conn of attackers) {
      const lists = await eventLists(conn, 3);
      const sizes = lists.map((l) => JSON.stringify(l).length);
      // A reply that carries history (60 KiB events), not just the few
      // small newest events a leftover of a floor still fits.
      substantial.push(sizes.filter((n) => n > 64 * 1024).length);
      total += sizes.reduce((a, b) => a + b, 0);
    }
    // The first to ask spent the budget (16 MiB: about 3 replies); each
    // other got exactly one floor reply with history.
    substantial.sort((a, b) => a - b);
    assert.deepEqual(substantial.slice(0, 3), [1, 1, 1], `replies with history: ${substantial}`);
    assert.ok(substantial[3] <= 3, `replies with history: ${substantial}`);
    assert.ok(total <= 16 * MiB + 4 * MiB + MiB, `${total} bytes of replies held for non-readers`);
  }, {
    flags: [
      "--memory",
      "--max-queue-bytes",
      String(16 * MiB),
      "--soft-queue-bytes",
      String(16 * MiB),
      "--soft-queue-time",
      "60",
    ],
  });
});
