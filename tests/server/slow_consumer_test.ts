// In-process: bounded send queues (docs/PROTOCOL.md §7, §10) over the in-memory
// transport. Clients that keep up are never evicted, however much one turn
// produced; a client that stops reading is (the RSS bound of that, against a
// real process and socket, is tests/e2e/transport/slow_consumer_test.ts).
import assert from "node:assert/strict";
import { withServer as withSrv } from "../_in_process.ts";
import { waitUntil } from "../_proc.ts";

const encoder = new TextEncoder();

Deno.test("a snapshot larger than --soft-queue-bytes still reaches a client that keeps up", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(1);
    await b.take(3);
    const ws = await a.request({ cmd: "create_workspace", name: "big" });
    await b.next();
    await a.send({
      cmd: "update_workspace_meta",
      workspace_id: ws.workspace_id,
      meta_patch: { pad: "y".repeat(16 * 1024) },
    });
    await a.next();
    await b.next();
    for (let i = 0; i < 3; i++) {
      await a.send({ cmd: "get_srv_snapshot" });
      for (const client of [a, b]) {
        const snap = await client.next();
        assert.equal(snap.event, "srv_snapshot");
        assert.equal(snap.meta.workspaces[ws.workspace_id].pad.length, 16 * 1024);
      }
    }
    assert.equal((await a.request({ cmd: "get_server_info" })).connections, 2);
  }, { flags: ["--memory", "--soft-queue-bytes", "4096"] });
});

// Clients that keep up are never evicted for how much one turn produced:
// each case once evicted a reader that was reading (review of the hub).

Deno.test("one write whose commands yield far more than --soft-queue-bytes in one turn evicts nobody", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(1);
    await b.take(3);
    // 30 pings fit in one read, so one turn queues 30 events for everyone,
    // five times the soft limit, before any of them can be written (and a,
    // which asks, is read on only as it takes its answers).
    const n = 30;
    const burst = Array.from({ length: n }, (_, i) => `{"cmd":"ping","nonce":${i}}`).join("\n");
    await a.writeRaw(encoder.encode(burst + "\n"));
    for (let i = 0; i < n; i++) assert.equal((await b.next()).nonce, i);
    for (let i = 0; i < n; i++) assert.equal((await a.next()).nonce, i);
    assert.equal(
      (await b.request({ cmd: "get_server_info" })).code,
      "not_registered",
      "b still open",
    );
    assert.doesNotMatch(srv.stderr(), /evicted/);
  }, { flags: ["--memory", "--soft-queue-bytes", "256"] });
});

Deno.test("a catch-up reply past --soft-queue-bytes reaches the reader that asked, with later events behind it", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    await a.register(1);
    for (let round = 0; round < 8; round++) {
      const batch = Array.from(
        { length: 500 },
        (_, i) => `{"cmd":"ping","nonce":${round * 500 + i}}`,
      );
      await a.writeRaw(encoder.encode(batch.join("\n") + "\n"));
      await a.take(500);
    }
    await a.writeRaw(encoder.encode(
      '{"cmd":"ping","nonce":1}\n{"cmd":"get_events","since":0}\n{"cmd":"ping","nonce":2}\n',
    ));
    assert.deepEqual((await a.take(3)).map((e) => e.event), ["pong", "event_list", "pong"]);
    assert.doesNotMatch(srv.stderr(), /evicted/);
  }, { flags: ["--memory", "--soft-queue-bytes", "65536"] });
});

Deno.test("a big snapshot behind other events in one turn reaches a listener that keeps up", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(1);
    await b.take(3);
    const creates = Array.from(
      { length: 400 },
      (_, i) => `{"cmd":"create_workspace","name":"w${i}"}`,
    );
    await a.writeRaw(encoder.encode(creates.join("\n") + "\n"));
    await a.take(400);
    await b.take(400);
    await a.writeRaw(encoder.encode('{"cmd":"ping","nonce":1}\n{"cmd":"get_srv_snapshot"}\n'));
    const got = await b.take(2);
    assert.deepEqual(got.map((e) => e.event), ["pong", "srv_snapshot"]);
    assert.equal(got[1].workspaces.length, 400);
    assert.doesNotMatch(srv.stderr(), /evicted/);
  }, { flags: ["--memory", "--soft-queue-bytes", "4096"] });
});

Deno.test("a client past --soft-queue-bytes is not read on, not even the rest of the chunk at hand", async () => {
  // §10: srv stops reading a connection whose unread output passes the soft
  // limit, including the commands left in the read it is working through;
  // if it never catches up, the soft limit's clock evicts it, and nothing
  // more it sent is ever run.
  await withSrv(async (srv, connect) => {
    const b = await connect();
    await b.register(1);
    // A pipe that holds 64 bytes of srv's output: the rest waits in srv's queue.
    const hog = srv.rawConnect(64);
    hog.pauseReading();
    const n = 1000;
    const burst = Array.from({ length: n }, (_, i) => `{"cmd":"ping","nonce":${i}}`).join("\n");
    // Registration and 1,000 pings in one write, which srv takes in one read.
    await hog.write(encoder.encode(
      `{"cmd":"register","kind":"tool","pid":2,"version":"h"}\n${burst}\n`,
    ));
    await waitUntil("srv evicted the hog", () => /pid=2\) closed: .*evicted/.test(srv.stderr()));
    assert.match(srv.stderr(), /pid=2\) closed: "?evicted: .*past the soft limit/);
    // b saw the pongs srv ran before the hog fell behind: a few, not 1,000.
    const seen: number[] = [];
    for (let e = await b.request({ cmd: "get_server_info" });; e = await b.next()) {
      if (e.event === "server_info") break;
      if (e.event === "pong") seen.push(e.nonce);
    }
    assert.ok(seen.length > 0 && seen.length < 50, `ran ${seen.length} of ${n} pings`);
  }, { flags: ["--memory", "--soft-queue-bytes", "256", "--soft-queue-time", "100ms"] });
});
