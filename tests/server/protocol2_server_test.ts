// Protocol 2 (docs/PROTOCOL.md §11) through a real Server over the in-memory
// transport: observers leave no trace, a batch is one contiguous turn with
// batch_end, its errors are private, two conditional batches race and one
// wins, and a client speaking only the reference protocol sees nothing new.
// The client library's side (observe, batch(), typed errors) runs here too.
import assert from "node:assert/strict";
import type { SrvClient } from "../../srv/client/client.ts";
import { connect } from "../../srv/client/connect.ts";
import { BatchConflictError, BatchFailedError } from "../../srv/client/errors.ts";
import type { Json, TestClient } from "../_harness.ts";
import { type InProcessSrv, withServer } from "../_in_process.ts";

const W1 = "10000000-0000-4000-8000-000000000001";
const T1 = "20000000-0000-4000-8000-000000000001";
const T2 = "20000000-0000-4000-8000-000000000002";

const OBSERVE = { cmd: "register", kind: "tool", pid: 4242, version: "o", observe: true };

/** Every event tag and error code a reference client knows (docs/PROTOCOL.md §4, §2). */
const REFERENCE_EVENTS = new Set([
  "registered",
  "pong",
  "error",
  "process_spawned",
  "process_exited",
  "lifecycle_phase_changed",
  "srv_snapshot",
  "event_list",
  "server_info",
  "workspace_created",
  "workspace_deleted",
  "workspace_renamed",
  "tab_created",
  "tab_deleted",
  "tab_renamed",
  "active_tab_changed",
  "tab_reordered",
  "tabs_reordered_bulk",
  "tab_moved",
  "block_created",
  "block_deleted",
  "block_moved",
  "workspace_meta_updated",
  "tab_meta_updated",
  "block_meta_updated",
]);
const REFERENCE_CODES = new Set(["invalid_command", "not_registered", "already_registered"]);

async function tree(c: TestClient): Promise<void> {
  await c.send({
    cmd: "batch",
    commands: [
      { cmd: "create_workspace", name: "main", workspace_id: W1 },
      { cmd: "create_tab", workspace_id: W1, name: "a", tab_id: T1 },
      { cmd: "create_tab", workspace_id: W1, name: "b", tab_id: T2 },
    ],
  });
  await c.take(4); // workspace_created, tab_created, active_tab_changed, tab_created
}

function libraryClient(srv: InProcessSrv, observe = false): Promise<SrvClient> {
  return connect({
    socket: srv.socket,
    reconnect: false,
    observe,
    dial: () => Promise.resolve(srv.listener.connect()),
  });
}

Deno.test("§11.1: observers leave no trace: no event, no version, lifecycle stays starting", async () => {
  await withServer(async (srv, connect) => {
    const a = await connect();
    const b = await connect();
    // Two observers with one pid, the same pid a registered client holds later.
    for (const c of [a, b]) {
      assert.deepEqual(await c.request(OBSERVE), {
        event: "registered",
        client_id: 0,
        launcher_pid: srv.pid,
        launcher_version: srv.server.identity.version,
        instance_id: srv.instance,
        protocol: 2,
        observe: true,
        version: 0,
      });
      assert.deepEqual(await c.request({ cmd: "ping", nonce: 9 }), {
        event: "pong",
        nonce: 9,
        version: 0,
      });
      const snap = await c.request({ cmd: "get_srv_snapshot" });
      assert.equal(snap.event, "srv_snapshot");
      assert.equal(snap.lifecycle, "starting");
      assert.equal(snap.version, 0);
      const list = await c.request({ cmd: "get_events", since: 0 });
      assert.deepEqual(list.events, []);
      const info = await c.request({ cmd: "get_server_info" });
      assert.equal(info.event_version, 0);
    }
    // Nobody saw anything of the other's requests: they were all private.
    assert.deepEqual(await a.drainUntilPrivateReply(), []);
    assert.equal(srv.server.state.eventVersion, 0);
    assert.equal(srv.server.state.lifecycle, "starting");
    assert.equal(srv.server.state.processes.size, 0);
    assert.equal(srv.server.history.stats().retained, 0);

    // Read-only: anything else is refused privately; register again too.
    assert.deepEqual(await a.request({ cmd: "create_workspace", name: "w" }), {
      event: "error",
      code: "invalid_command",
      message: "observers are read-only: create_workspace",
      fatal: false,
      version: 0,
    });
    assert.equal((await a.request(OBSERVE)).code, "already_registered");

    // The pid is not claimed: a real client registers with it.
    const real = await connect();
    const registered = await real.register(4242);
    assert.equal(registered.at(-1).event, "registered");
    // Observers receive broadcasts like any connection.
    for (const c of [a, b]) {
      assert.deepEqual((await c.take(3)).map((e: Json) => e.event), [
        "process_spawned",
        "lifecycle_phase_changed",
        "registered",
      ]);
    }
    // goodbye closes an observer with no event; a drop dispatches nothing.
    const before = srv.server.state.eventVersion;
    await a.send({ cmd: "goodbye" });
    assert.equal(await a.closedByServer(), true);
    b.close();
    assert.deepEqual(await real.drainUntilPrivateReply(), []);
    assert.equal(srv.server.state.eventVersion, before);
  });
});

Deno.test("§11.3: subscribers see a batch as one contiguous run, each event with batch_end", async () => {
  await withServer(async (_srv, connect) => {
    const writer = await connect();
    const noise = await connect();
    const watcher = await connect();
    await writer.register(1);
    await noise.register(2);
    await watcher.register(3);
    await writer.drainUntilPrivateReply();
    await watcher.drainUntilPrivateReply();
    // Another client's pings pipelined around the batch never split it.
    const pings = Array.from({ length: 20 }, (_, i) => JSON.stringify({ cmd: "ping", nonce: i }));
    await noise.send(pings.slice(0, 10).join("\n"));
    await writer.send({
      cmd: "batch",
      commands: [
        { cmd: "create_workspace", name: "main", workspace_id: W1 },
        { cmd: "create_tab", workspace_id: W1, name: "a", tab_id: T1 },
        { cmd: "create_tab", workspace_id: W1, name: "b", tab_id: T2 },
        { cmd: "set_active_tab", workspace_id: W1, tab_id: T2 },
        { cmd: "create_block", tab_id: T2, meta: { k: 1 } },
      ],
    });
    await noise.send(pings.slice(10).join("\n"));
    const seen = await watcher.take(26);
    const run = seen.filter((e: Json) => e.event !== "pong");
    assert.deepEqual(run.map((e: Json) => e.event), [
      "workspace_created",
      "tab_created",
      "active_tab_changed",
      "tab_created",
      "active_tab_changed",
      "block_created",
    ]);
    const first = seen.indexOf(run[0]);
    assert.deepEqual(seen.slice(first, first + run.length), run, "no other event in between");
    const end = run.at(-1).version;
    run.forEach((e: Json, i: number) => {
      assert.equal(e.version, run[0].version + i, "consecutive versions");
      assert.equal(e.batch_end, end);
    });
    // Pings carry no batch_end.
    assert.ok(seen.filter((e: Json) => e.event === "pong").every((e: Json) => !("batch_end" in e)));
    // get_server_info reports the batch like any command.
    await writer.drainUntilPrivateReply();
    const info = await writer.request({ cmd: "get_server_info" });
    assert.deepEqual(info.last_command, { cmd: "batch", first: run[0].version, last: end });
  });
});

Deno.test("§11.3: a failed batch is private to its sender, uses no version, applies nothing", async () => {
  await withServer(async (srv, connect) => {
    const writer = await connect();
    const other = await connect();
    await writer.register(1);
    await other.register(2);
    await tree(writer);
    await other.drainUntilPrivateReply();
    await writer.drainUntilPrivateReply();
    const version = srv.server.state.eventVersion;
    assert.deepEqual(
      await writer.request({
        cmd: "batch",
        commands: [
          { cmd: "rename_tab", tab_id: T1, name: "x" },
          { cmd: "delete_tab", workspace_id: W1, tab_id: T2, force: true },
          { cmd: "create_tab", workspace_id: "gone", name: "t" },
        ],
      }),
      {
        event: "error",
        code: "invalid_command",
        message: "Batch: command 2 (create_tab) failed: CreateTab: workspace not found: gone",
        fatal: false,
        index: 2,
        version: 0,
      },
    );
    assert.deepEqual(
      await writer.request({
        cmd: "batch",
        commands: [{ cmd: "rename_tab", tab_id: T1, name: "x" }],
        if_unchanged_since: 1,
      }),
      {
        event: "error",
        code: "precondition_failed",
        message: `Batch: tab ${T1} changed at version 7 (after 1)`,
        fatal: false,
        index: null,
        version: 0,
      },
    );
    assert.deepEqual(await other.drainUntilPrivateReply(), [], "the other client saw nothing");
    assert.equal(srv.server.state.eventVersion, version);
    assert.equal(srv.server.state.tabs.get(T1)?.name, "a");
    const info = await writer.request({ cmd: "get_server_info" });
    assert.deepEqual(info.last_command, { cmd: "batch", first: null, last: null });
  });
});

Deno.test("§11.3: of two conditional batches on one entity, exactly one wins; the loser gets precondition_failed", async () => {
  await withServer(async (srv, connect) => {
    for (let round = 0; round < 20; round++) {
      const a = await connect();
      const b = await connect();
      await a.register(100 + round * 2);
      await b.register(101 + round * 2);
      await a.drainUntilPrivateReply();
      await b.drainUntilPrivateReply();
      const ws = crypto.randomUUID();
      await a.send({ cmd: "create_workspace", name: "w", workspace_id: ws });
      const created = await a.next();
      assert.equal(created.event, "workspace_created");
      await b.drainUntilPrivateReply();
      const v = created.version;
      // Both read at v and both act on it, pipelined at once.
      const batchOf = (name: string) => ({
        cmd: "batch",
        commands: [{ cmd: "rename_workspace", workspace_id: ws, name }],
        if_unchanged_since: v,
      });
      await Promise.all([a.send(batchOf("by-a")), b.send(batchOf("by-b"))]);
      const outcomes: string[] = [];
      for (const [c, name] of [[a, "by-a"], [b, "by-b"]] as const) {
        // Read until this client's own outcome: its rename, or its refusal.
        while (true) {
          const e = await c.next();
          if (e.event === "workspace_renamed" && e.name === name) {
            outcomes.push("won");
            break;
          }
          if (e.event === "error") {
            assert.equal(e.code, "precondition_failed");
            assert.equal(e.version, 0);
            assert.equal(
              e.message,
              `Batch: workspace ${ws} changed at version ${v + 1} (after ${v})`,
            );
            outcomes.push("lost");
            break;
          }
        }
      }
      assert.deepEqual([...outcomes].sort(), ["lost", "won"], `round ${round}`);
      const winner = outcomes[0] === "won" ? "by-a" : "by-b";
      assert.equal(srv.server.state.workspaces.get(ws)?.name, winner);
      await a.dispose();
      await b.dispose();
    }
  });
});

Deno.test("a reference client sees nothing new: known tags and codes only, no index", async () => {
  await withServer(async (_srv, connect) => {
    const reference = await connect();
    await reference.register(1, "renderer");
    const observer = await connect();
    await observer.request(OBSERVE);
    await observer.request({ cmd: "get_srv_snapshot" });
    await observer.request({ cmd: "ping", nonce: 1 });
    await observer.request({ cmd: "delete_workspace", workspace_id: W1 });
    const tool = await connect();
    await tool.register(2);
    await tree(tool);
    await tool.request({
      cmd: "batch",
      commands: [{ cmd: "rename_tab", tab_id: "no", name: "x" }],
    });
    await tool.request({
      cmd: "batch",
      commands: [{ cmd: "rename_tab", tab_id: T1, name: "x" }],
      if_unchanged_since: 0,
    });
    await tool.send({ cmd: "create_workspace", name: "dup", workspace_id: W1 }); // broadcast error
    await tool.send({ cmd: "batch", commands: [{ cmd: "rename_tab", tab_id: T1, name: "y" }] });
    await observer.send({ cmd: "goodbye" });
    await tool.send({ cmd: "goodbye" });
    const seen = await reference.drainUntilPrivateReply();
    assert.ok(seen.length >= 8, JSON.stringify(seen));
    for (const e of seen) {
      assert.ok(REFERENCE_EVENTS.has(e.event), `unknown tag ${e.event}`);
      assert.ok(typeof e.version === "number" && e.version > 0, "only broadcasts");
      if (e.event === "error") {
        assert.ok(REFERENCE_CODES.has(e.code), e.code);
        assert.equal("index" in e, false);
      }
      if (e.event === "registered") assert.equal("observe" in e, false);
    }
    // What it saw is exactly the logged history plus the broadcast error.
    assert.deepEqual(seen.filter((e: Json) => e.event === "error").map((e: Json) => e.message), [
      `CreateWorkspace: workspace already exists: ${W1}`,
    ]);
  });
});

Deno.test("client library: observe mode, batch() resolves with events, typed conflict and failure", async () => {
  await withServer(async (srv) => {
    const watcher = await libraryClient(srv, true);
    assert.equal(watcher.registered?.observe, true);
    assert.equal(watcher.registered?.client_id, 0);
    assert.equal((await watcher.ping(5)).version, 0);
    const empty = await watcher.snapshot();
    assert.equal(empty.lifecycle, "starting");
    const stream = watcher.events();

    const tool = await libraryClient(srv);
    await tool.register({ kind: "tool", pid: 77 });
    const [made] = await tool.command({ cmd: "create_workspace", name: "w", workspace_id: W1 });
    assert.equal(made.workspace_id, W1, "create helpers take an id");
    const v = made.version;
    const events = await tool.batch([
      { cmd: "create_tab", workspace_id: W1, name: "a", tab_id: T1 },
      { cmd: "rename_workspace", workspace_id: W1, name: "renamed" },
    ], { ifUnchangedSince: v });
    assert.deepEqual(events.map((e) => [e.event, e.batch_end]), [
      ["tab_created", v + 3],
      ["active_tab_changed", v + 3],
      ["workspace_renamed", v + 3],
    ]);
    await assert.rejects(
      tool.batch([{ cmd: "rename_workspace", workspace_id: W1, name: "late" }], {
        ifUnchangedSince: v,
      }),
      (e) =>
        e instanceof BatchConflictError && e.entity === "workspace" && e.id === W1 &&
        e.changedAt === v + 3 && e.code === "precondition_failed",
    );
    await assert.rejects(
      tool.batch([
        { cmd: "rename_tab", tab_id: T1, name: "ok" },
        { cmd: "rename_tab", tab_id: "missing", name: "no" },
      ]),
      (e) => e instanceof BatchFailedError && e.index === 1,
    );
    assert.deepEqual(await tool.batch([{ cmd: "rename_tab", tab_id: T1, name: "a" }]), []);

    // The observer's stream got the batch, in order, and nothing of the refusals.
    const names: string[] = [];
    for await (const item of stream) {
      if (item.type === "event") names.push(item.event.event);
      if (names.includes("workspace_renamed")) break;
    }
    assert.deepEqual(names.slice(-3), ["tab_created", "active_tab_changed", "workspace_renamed"]);
    await watcher.close();
    await tool.close();
    assert.equal(srv.server.state.processes.get(77)?.status, "exited");
  });
});

Deno.test("client library: batch([]) resolves with [] and sends nothing", async () => {
  await withServer(async (srv) => {
    const written: string[] = [];
    const tool = await connect({
      socket: srv.socket,
      reconnect: false,
      dial: () => {
        const conn = srv.listener.connect();
        const write = conn.write.bind(conn);
        conn.write = (bytes) => {
          written.push(new TextDecoder().decode(bytes));
          return write(bytes);
        };
        return Promise.resolve(conn);
      },
    });
    await tool.register({ kind: "tool", pid: 78 });
    const version = srv.server.state.eventVersion;
    const sent = written.length;
    assert.deepEqual(await tool.batch([]), []);
    assert.deepEqual(await tool.batch([], { ifUnchangedSince: version }), []);
    assert.equal(written.length, sent, "nothing was written");
    assert.equal(srv.server.state.eventVersion, version);
    // The connection is as it was: the next command is answered as usual.
    const [made] = await tool.command({ cmd: "create_workspace", name: "w", workspace_id: W1 });
    assert.equal(made.version, version + 1);
    assert.ok(written.slice(sent).join("").includes('"create_workspace"'));
    await tool.close();
  });
});

Deno.test("§11.1/§10: an observer's register satisfies the register timeout; silence does not", async () => {
  await withServer(async (srv, connect) => {
    const observer = await connect();
    assert.equal((await observer.request(OBSERVE)).observe, true);
    const idle = await connect();
    // The idle connection, opened after the observer, is closed at its deadline...
    assert.deepEqual(await idle.next(), {
      event: "error",
      code: "not_registered",
      message: "register within 0.3 s",
      fatal: true,
      version: 0,
    });
    assert.ok(await idle.closedByServer());
    // ...so the observer's (earlier) deadline has passed too, and it is still served.
    assert.deepEqual(await observer.request({ cmd: "ping", nonce: 1 }), {
      event: "pong",
      nonce: 1,
      version: 0,
    });
    assert.equal((await observer.request({ cmd: "get_server_info" })).connections, 1);
    assert.equal(srv.server.state.eventVersion, 0);
  }, { flags: ["--memory", "--register-timeout", "300ms"] });
});

Deno.test("§11.3: a batch whose events would pass half the hard output limit is refused; none is evicted by it", async () => {
  await withServer(async (srv, connect) => {
    const sleeper = srv.rawConnect(16 * 1024);
    await sleeper.write(new TextEncoder().encode(JSON.stringify(OBSERVE) + "\n"));
    sleeper.pauseReading();
    const writer = await connect();
    await writer.register(1);
    await writer.request({ cmd: "create_workspace", name: "w", workspace_id: W1 });
    const version = srv.server.state.eventVersion;
    const updates = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        cmd: "update_workspace_meta",
        workspace_id: W1,
        meta_patch: { pad: `${i}`.padEnd(8192, "p") },
      }));
    // 16 × 8 KiB: more than any connection may hold unread (64 KiB), in one turn.
    const refused = await writer.request({ cmd: "batch", commands: updates(16) });
    assert.equal(refused.code, "invalid_command");
    assert.equal(refused.index, null);
    assert.equal(refused.version, 0);
    assert.match(
      refused.message,
      /^Batch: its events take \d+ bytes, more than half of --max-queue-bytes \(32768\)$/,
    );
    assert.equal(srv.server.state.eventVersion, version, "nothing applied");
    assert.equal((await writer.request({ cmd: "get_server_info" })).connections, 2);
    // Under the bound it applies; the sleeper falls behind by whole batches and
    // is evicted, the writer, reading, never is.
    for (let round = 0; round < 4; round++) {
      await writer.send({ cmd: "batch", commands: updates(3) });
      // Only the batch: the evicted observer's end dispatches nothing (§11.1).
      const run = await writer.take(3);
      assert.ok(run.every((e: Json) => e.event === "workspace_meta_updated"));
    }
    assert.deepEqual(await writer.drainUntilPrivateReply(), []);
    assert.equal(srv.server.state.eventVersion, version + 12);
    assert.match(srv.stderr(), /evicted/);
    assert.equal((await writer.request({ cmd: "get_server_info" })).connections, 1);
  }, {
    flags: ["--memory", "--max-queue-bytes", "65536", "--soft-queue-bytes", "16384"],
  });
});

Deno.test("§11.3 on the wire: batch_end just before version; a batch that changes nothing logs nothing", async () => {
  await withServer(async (srv, connect) => {
    const c = await connect();
    await c.register(1);
    await c.send({
      cmd: "batch",
      commands: [
        { cmd: "create_workspace", name: "main", workspace_id: W1 },
        { cmd: "rename_workspace", workspace_id: W1, name: "w" },
      ],
    });
    assert.equal(
      await c.nextLine(),
      `{"event":"workspace_created","workspace_id":"${W1}","name":"main","batch_end":5,"version":4}`,
    );
    assert.equal(
      await c.nextLine(),
      `{"event":"workspace_renamed","workspace_id":"${W1}","name":"w","batch_end":5,"version":5}`,
    );
    // Changes nothing (a rename to the same name, a delete of nothing): no event, no version.
    await c.send({
      cmd: "batch",
      commands: [
        { cmd: "rename_workspace", workspace_id: W1, name: "w" },
        { cmd: "delete_tab", workspace_id: W1, tab_id: T1 },
      ],
    });
    assert.deepEqual(await c.drainUntilPrivateReply(), []);
    assert.equal(srv.server.state.eventVersion, 5);
    const info = await c.request({ cmd: "get_server_info" });
    assert.deepEqual(info.last_command, { cmd: "batch", first: null, last: null });
    assert.equal(info.event_version, 5);
  });
});

Deno.test("§11.3/§1: the line cap bounds a batch: 1,000 commands just under it apply, just over it close", async () => {
  await withServer(async (srv, connect) => {
    const observer = await connect();
    assert.equal((await observer.request(OBSERVE)).observe, true);
    const c = await connect();
    await c.register(1);
    await observer.take(3);
    const line = (pad: number) =>
      JSON.stringify({
        cmd: "batch",
        commands: Array.from({ length: 1000 }, (_, i) => ({
          cmd: "create_workspace",
          name: `${i}`.padEnd(pad, "n"),
        })),
      });
    // 1,000 names of 990 bytes: just under the 1 MiB line.
    const under = line(990);
    assert.ok(under.length < 1024 * 1024 && under.length > 1024 * 1024 - 40 * 1000);
    await c.send(under);
    const run = await observer.take(1000);
    assert.ok(run.every((e: Json, i: number) => e.version === 4 + i && e.batch_end === 1003));
    assert.equal((await c.take(1000)).at(-1).version, 1003);
    // 50 bytes more per name: past the cap, a fatal error and nothing applied.
    const over = line(1040);
    assert.ok(over.length > 1024 * 1024);
    await c.send(over);
    assert.deepEqual(await c.next(), {
      event: "error",
      code: "invalid_command",
      message: "line exceeds 1048576 bytes; closing the connection",
      fatal: true,
      version: 0,
    });
    assert.ok(await c.closedByServer());
    // The observer sees only the sender's synthetic goodbye.
    assert.deepEqual((await observer.drainUntilPrivateReply()).map((e: Json) => e.event), [
      "process_exited",
    ]);
    assert.equal(srv.server.state.workspaces.size, 1000);
  });
});

Deno.test("§11.3/§10: a batch crossing --max-blocks or --max-state-bytes is refused whole; nothing logged", async () => {
  await withServer(async (srv, connect) => {
    const observer = await connect();
    assert.equal((await observer.request(OBSERVE)).observe, true);
    const c = await connect();
    await c.register(1);
    await tree(c);
    await observer.drainUntilPrivateReply();
    const logged = srv.server.history.stats();
    const version = srv.server.state.eventVersion;
    const blocks = (meta: Json) =>
      Array.from({ length: 1000 }, () => ({ cmd: "create_block", tab_id: T1, meta }));
    const cases: [Json[], RegExp][] = [
      [blocks(null), /^Batch: command 500 \(create_block\) failed: .*\(--max-blocks\)$/],
      [
        blocks({ pad: "x".repeat(400) }),
        /^Batch: command \d+ \(create_block\) failed: .*--max-state-bytes/,
      ],
    ];
    for (const [commands, message] of cases) {
      const refused = await c.request({ cmd: "batch", commands });
      assert.equal(refused.code, "invalid_command");
      assert.match(refused.message, message);
      assert.equal(refused.version, 0);
    }
    assert.deepEqual(await observer.drainUntilPrivateReply(), []);
    assert.deepEqual(srv.server.history.stats(), logged);
    assert.equal(srv.server.state.eventVersion, version);
    assert.equal(srv.server.state.blocks.size, 0);
  }, { flags: ["--memory", "--max-blocks", "500", "--max-state-bytes", "100000"] });
});
