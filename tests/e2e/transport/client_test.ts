// The client library against a real srv process on a real socket: every
// helper, reply matching with concurrent writers, the event stream, and
// reconnect/resync across a SIGKILL, a truncated history and a server that
// lost its history.
import assert from "node:assert/strict";
import { type ClientStatus } from "../../../srv/client/options.ts";
import type { SrvClient } from "../../../srv/client/client.ts";
import { connect } from "../../../srv/client/connect.ts";
import { type Connection } from "../../../srv/transport/transport.ts";
import { ConnectionLostError, SrvError, UnreachableError } from "../../../srv/client/errors.ts";
import { connectNamedPipe } from "../../../srv/transport/node_net.ts";
import { dialEndpoint } from "../../../srv/client/dial.ts";
import { type Event, type LoggedEvent } from "../../../srv/core/protocol.ts";
import { type StreamItem } from "../../../srv/client/_event_subscription.ts";
import { ON_WINDOWS, type SrvProcess, startSrv, testEndpoint, withSrv } from "../../_harness.ts";

/** Upper bound for one awaited fact; a hang fails the test instead of CI. */
const FACT_TIMEOUT_MS = 30_000;

/** Something tests wait on: re-checked on every notify, bounded by a timeout. */
class Watch {
  #waiters = new Set<() => void>();

  notify(): void {
    for (const wake of [...this.#waiters]) wake();
  }

  async until(fact: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + FACT_TIMEOUT_MS;
    while (!fact()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      let wake!: () => void;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        this.#waiters.add(wake);
        timer = setTimeout(resolve, left);
      });
      this.#waiters.delete(wake);
      clearTimeout(timer);
    }
  }
}

/** Collects a stream in the background. */
function collect(stream: AsyncIterableIterator<StreamItem>, watch: Watch) {
  const items: StreamItem[] = [];
  const done = (async () => {
    for await (const item of stream) {
      items.push(item);
      watch.notify();
    }
    watch.notify();
  })();
  return {
    items,
    events: () => items.flatMap((i) => (i.type === "event" ? [i.event] : [])),
    done,
  };
}

const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 100 };

async function client(srv: SrvProcess, pid: number, options = {}): Promise<SrvClient> {
  const c = await connect({ socket: srv.socket, ...options });
  await c.register({ kind: "tool", pid, version: "test" });
  return c;
}

Deno.test("every helper resolves with exactly the events its command caused", async () => {
  await withSrv(async (srv) => {
    const c = await connect({ socket: srv.socket });
    try {
      const registered = await c.register({ kind: "host", pid: 4242, version: "t 1" });
      assert.equal(registered.event, "registered");
      assert.equal(registered.instance_id, srv.instance);
      assert.equal(c.instanceId, srv.instance);
      const caused: Event[][] = [];
      const note = async <T extends Event>(p: Promise<T[]>): Promise<T[]> => {
        const events = await p;
        caused.push(events);
        return events;
      };
      const [ws] = await note(c.command({ cmd: "create_workspace", name: "main" }));
      const [ws2] = await note(c.command({ cmd: "create_workspace", name: "other" }));
      const first = await note(
        c.command({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "a" }),
      );
      assert.deepEqual(first.map((e) => e.event), ["tab_created", "active_tab_changed"]);
      const tabA = (first[0] as { tab_id: string }).tab_id;
      const [second] = await note(
        c.command({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "b" }),
      );
      const tabB = (second as { tab_id: string }).tab_id;
      assert.deepEqual(
        (await note(
          c.command({ cmd: "rename_workspace", workspace_id: ws.workspace_id, name: "main!" }),
        )).map((e) => e.name),
        ["main!"],
      );
      assert.deepEqual(
        (await note(c.command({ cmd: "rename_tab", tab_id: tabA, name: "a!" }))).map((e) => e.name),
        ["a!"],
      );
      assert.deepEqual(
        (await note(
          c.command({ cmd: "set_active_tab", workspace_id: ws.workspace_id, tab_id: tabB }),
        )).map((e) => e.tab_id),
        [
          tabB,
        ],
      );
      assert.deepEqual(
        (await note(
          c.command({
            cmd: "reorder_tab",
            workspace_id: ws.workspace_id,
            tab_id: tabB,
            new_index: 0,
          }),
        )).map((e) => e.new_index),
        [0],
      );
      assert.deepEqual(
        (await note(
          c.command({
            cmd: "reorder_tabs_bulk",
            workspace_id: ws.workspace_id,
            tab_ids: [tabA, tabB],
          }),
        )).map((e) => e.tab_ids),
        [[tabA, tabB]],
      );
      const [term] = await note(
        c.command({ cmd: "create_block", tab_id: tabA, meta: { kind: "term" } }),
      );
      assert.deepEqual(term.meta, { kind: "term" });
      const [plain] = await note(c.command({ cmd: "create_block", tab_id: tabA }));
      assert.equal(plain.meta, null);
      assert.deepEqual(
        (await note(
          c.command({
            cmd: "move_block",
            block_id: plain.block_id,
            src_tab_id: tabA,
            dst_tab_id: tabB,
            dst_index: 0,
          }),
        )).map((e) => e.dst_tab_id),
        [tabB],
      );
      assert.deepEqual(
        (await note(c.command({ cmd: "delete_block", tab_id: tabB, block_id: plain.block_id })))
          .map((e) => e.event),
        ["block_deleted"],
      );
      await note(
        c.command({
          cmd: "update_workspace_meta",
          workspace_id: ws.workspace_id,
          meta_patch: { color: "red" },
        }),
      );
      await note(c.command({ cmd: "update_tab_meta", tab_id: tabA, meta_patch: { pinned: true } }));
      await note(
        c.command({
          cmd: "update_block_meta",
          block_id: term.block_id,
          meta_patch: { title: "build" },
        }),
      );
      const [moved] = await note(
        c.command({
          cmd: "move_tab",
          tab_id: tabB,
          src_workspace_id: ws.workspace_id,
          dst_workspace_id: ws2.workspace_id,
          dst_index: 0,
        }),
      );
      assert.equal(moved.new_dst_active_tab_id, tabB);
      const deleted = await note(
        c.command({ cmd: "delete_tab", workspace_id: ws.workspace_id, tab_id: tabA, force: true }),
      );
      assert.deepEqual(deleted.map((e) => e.event), ["tab_deleted", "active_tab_changed"]);
      assert.deepEqual((deleted[0] as { block_ids: string[] }).block_ids, [term.block_id]);
      await note(c.command({ cmd: "delete_workspace", workspace_id: ws2.workspace_id }));
      const pong = await c.ping(18446744073709551615n);
      assert.equal(pong.nonce, 18446744073709551615n);
      caused.push([pong]);

      // Nobody else wrote: the helpers' results, in order, are the whole history after register.
      const history = await c.getEvents(registered.version);
      assert.deepEqual(history.events, caused.flat());
      assert.equal(history.truncated, false);
      assert.equal(history.instance_id, srv.instance);

      const snapshot = await c.snapshot();
      assert.deepEqual(snapshot.workspaces, [[ws.workspace_id, "main!"]]);
      assert.deepEqual(snapshot.meta.workspaces[ws.workspace_id], { color: "red" });
      assert.equal(snapshot.version, pong.version + 1);
      const info = await c.serverInfo();
      assert.equal(info.instance_id, srv.instance);
      assert.equal(info.event_version, snapshot.version);
      assert.deepEqual(info.last_command, {
        cmd: "get_srv_snapshot",
        first: snapshot.version,
        last: snapshot.version,
      });
    } finally {
      await c.close();
    }
  });
});

Deno.test("errors: typed rejections from helpers, values from send, no-ops resolve empty", async () => {
  await withSrv(async (srv) => {
    const early = await connect({ socket: srv.socket });
    await assert.rejects(early.ping(1), { name: "SrvError", code: "not_registered" });
    await early.close();

    const c = await client(srv, 5000);
    const other = await connect({ socket: srv.socket });
    try {
      const refused = await c.command({ cmd: "create_tab", workspace_id: "nope", name: "x" }).then(
        () => assert.fail("createTab on an unknown workspace must reject"),
        (e) => e,
      );
      assert.ok(refused instanceof SrvError);
      assert.equal(refused.code, "invalid_command");
      assert.equal(refused.message, "CreateTab: workspace not found: nope");
      assert.ok(refused.version > 0, "a reducer error is broadcast with a version");

      assert.deepEqual(await c.command({ cmd: "delete_workspace", workspace_id: "nope" }), []);
      assert.deepEqual(
        await c.command({ cmd: "delete_block", tab_id: "nope", block_id: "nope" }),
        [],
      );

      const launcher = await c.send({ cmd: "get_snapshot" });
      assert.equal(launcher.error?.message, "srv reducer does not accept: get_snapshot");
      const garbled = await c.send({ cmd: "create_tab", workspace_id: 5 } as never);
      assert.equal(garbled.error?.code, "invalid_command");
      assert.match(garbled.error!.message, /^parse failed: /);
      assert.equal(garbled.error!.version, 0);

      const twice = await c.send({ cmd: "register", kind: "tool", pid: 5000, version: "x" });
      assert.equal(twice.error?.message, "Register sent twice on the same connection");
      await assert.rejects(
        other.register({ kind: "tool", pid: 5000 }),
        (e) =>
          e instanceof SrvError && e.code === "already_registered" &&
          e.message === "pid 5000 is already registered with srv",
      );
      // Refused, the other connection may try again with a free pid.
      assert.equal((await other.register({ kind: "tool", pid: 5001 })).event, "registered");
      assert.equal((await c.ping(7)).nonce, 7, "c is still usable after its refusals");
    } finally {
      await other.close();
      await c.close();
    }
  });
});

Deno.test("close says goodbye; a closed client refuses requests and ends its streams", async () => {
  await withSrv(async (srv, connectRaw) => {
    const observer = await connectRaw();
    await observer.register(1);
    const c = await client(srv, 77);
    const stream = c.events();
    await c.close();
    assert.ok(c.closed);
    const seen = await observer.drainUntilPrivateReply();
    assert.deepEqual(seen.at(-1), {
      event: "process_exited",
      pid: 77,
      code: 0,
      version: seen.at(-1).version,
    });
    // The stream ends after the client's own goodbye event.
    const rest: StreamItem[] = [];
    for await (const item of stream) rest.push(item);
    assert.deepEqual(rest.map((i) => i.type === "event" && i.event.event), ["process_exited"]);
    await assert.rejects(c.ping(), ConnectionLostError);

    const d = await client(srv, 78);
    const bye = await d.send({ cmd: "goodbye" });
    assert.deepEqual(bye.events.map((e) => e.event), ["process_exited"]);
    assert.ok(d.closed);
  });
});

Deno.test("no server at the socket: UnreachableError naming the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-client-" });
  try {
    const missing = testEndpoint(dir);
    await assert.rejects(
      connect({ socket: missing }),
      (e) => e instanceof UnreachableError && e.path === missing && /no srv at/.test(e.message),
    );
    if (ON_WINDOWS) return; // a pipe leaves nothing behind when its server dies
    // A socket file nobody listens on: left by a killed server.
    const stale = `${dir}/stale.sock`;
    const srv = await startSrv({ dir, socket: stale });
    await srv.stop("SIGKILL");
    assert.ok((await Deno.lstat(stale)).isSocket);
    await assert.rejects(
      connect({ socket: stale }),
      (e) => e instanceof UnreachableError && /connection refused/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("concurrent writers: each call gets its own events, never another's", async () => {
  await withSrv(async (srv) => {
    const clients = await Promise.all([1, 2, 3, 4].map((i) => client(srv, 6000 + i)));
    try {
      const perClient = 25;
      const results = await Promise.all(clients.map(async (c, ci) => {
        // Pipelined: every call is in flight at once, on all four connections.
        const calls = [];
        for (let i = 0; i < perClient; i++) {
          calls.push(c.command({ cmd: "create_workspace", name: "same" }));
          calls.push(
            c.command({ cmd: "rename_tab", tab_id: `ghost-${ci}-${i}`, name: "x" }).then(
              () => null,
              (e) => e,
            ),
          );
          calls.push(
            c.command({ cmd: "delete_block", tab_id: `ghost-${ci}`, block_id: `ghost-${i}` }),
          );
        }
        return await Promise.all(calls);
      }));
      const ids: string[] = [];
      for (const [ci, calls] of results.entries()) {
        for (let i = 0; i < perClient; i++) {
          const [created, error, noop] = calls.slice(3 * i, 3 * i + 3) as [
            { event: string; workspace_id: string }[],
            SrvError,
            unknown[],
          ];
          assert.equal(created.length, 1);
          assert.equal(created[0].event, "workspace_created");
          ids.push(created[0].workspace_id);
          assert.equal(error.message, `RenameTab: tab not found: ghost-${ci}-${i}`);
          assert.deepEqual(noop, []);
        }
      }
      assert.equal(new Set(ids).size, 4 * perClient, "no workspace claimed by two calls");
      const history = await clients[0].getEvents(0);
      const createdInHistory = history.events.flatMap((e) =>
        e.event === "workspace_created" ? [e.workspace_id] : []
      );
      assert.deepEqual(new Set(createdInHistory), new Set(ids));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

Deno.test("the event stream under concurrent writers: the server's history, in order, once", async () => {
  await withSrv(async (srv) => {
    const watch = new Watch();
    const consumer = await client(srv, 7000);
    const replayed = collect(consumer.events({ since: 0 }), watch);
    const writers = await Promise.all([1, 2].map((i) => client(srv, 7000 + i)));
    const live = collect(consumer.events(), watch);
    try {
      const lasts = await Promise.all(writers.map(async (w, wi) => {
        const [ws] = await w.command({ cmd: "create_workspace", name: `w${wi}` });
        const [tab] = await w.command({
          cmd: "create_tab",
          workspace_id: ws.workspace_id,
          name: "t",
        });
        const tabId = (tab as { tab_id: string }).tab_id;
        await Promise.all(
          Array.from(
            { length: 40 },
            (_, i) => w.command({ cmd: "create_block", tab_id: tabId, meta: { i } }),
          ),
        );
        return (await w.ping()).version;
      }));
      const last = Math.max(...lasts);
      await watch.until(
        () => (replayed.events().at(-1)?.version ?? 0) >= last,
        "the consumer to see the writers' last event",
      );
      const history = (await consumer.getEvents(0)).events;
      const expected = history.filter((e) => e.version <= last);
      const got = replayed.events().filter((e) => e.version <= last);
      assert.deepEqual(got, expected);
      assert.ok(replayed.items.every((i) => i.type === "event"));
      // The live stream started later: a gap-free suffix of the same history.
      await watch.until(
        () => (live.events().at(-1)?.version ?? 0) >= last,
        "the live stream to catch up",
      );
      const liveGot = live.events().filter((e) => e.version <= last);
      assert.ok(liveGot.length >= 80, `live stream saw only ${liveGot.length} events`);
      assert.deepEqual(liveGot, expected.slice(expected.length - liveGot.length));
    } finally {
      await Promise.all(writers.map((w) => w.close()));
      await consumer.close();
      await Promise.all([replayed.done, live.done]);
    }
  });
});

Deno.test("SIGKILL and restart on the same data dir while events flow: nothing lost, nothing twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-client-durable-" });
  const flags = ["--data-dir", `${dir}/data`];
  let srv = await startSrv({ dir, flags });
  const watch = new Watch();
  const statuses: ClientStatus[] = [];
  const consumer = await client(srv, 8001, {
    reconnect: FAST_RECONNECT,
    onStatus: (s: ClientStatus) => {
      statuses.push(s);
      watch.notify();
    },
  });
  const stream = collect(consumer.events({ since: 0 }), watch);
  const writer = await client(srv, 8002, { reconnect: FAST_RECONNECT });
  let stop = false;
  let written = 0;
  let lost = 0;
  const writing = (async () => {
    const [ws] = await writer.command({ cmd: "create_workspace", name: "flow" });
    const [tab] = await writer.command({
      cmd: "create_tab",
      workspace_id: ws.workspace_id,
      name: "t",
    });
    const tabId = (tab as { tab_id: string }).tab_id;
    while (!stop) {
      try {
        await writer.command({ cmd: "create_block", tab_id: tabId, meta: { n: written } });
        written++;
      } catch (e) {
        if (!(e instanceof ConnectionLostError)) throw e;
        lost++; // outcome unknown; the history will tell
      }
      watch.notify();
    }
  })();
  try {
    await watch.until(() => written >= 30, "writes before the kill");
    await srv.stop("SIGKILL");
    const before = written;
    srv = await startSrv({ dir, flags, socket: srv.socket });
    await watch.until(
      () => written >= before + 30,
      "writes after the restart",
    );
    stop = true;
    await writing;
    const last = (await writer.ping()).version;
    await watch.until(
      () => (stream.events().at(-1)?.version ?? 0) >= last,
      "the consumer to catch up",
    );
    const history = (await writer.getEvents(0)).events.filter((e) => e.version <= last);
    assert.deepEqual(stream.events().filter((e) => e.version <= last), history);
    assert.ok(stream.items.every((i) => i.type === "event"), "replayed, not resynced");
    assert.ok(
      statuses.some((s) =>
        s.state === "reconnected" && !s.resynced && s.instanceId === srv.instance
      ),
      JSON.stringify(statuses),
    );
    // Both server instances contributed to what the consumer saw.
    const instances = new Set(
      stream.events().flatMap((e) => (e.event === "registered" ? [e.instance_id] : [])),
    );
    assert.ok(instances.has(srv.instance) && instances.size >= 2);
  } finally {
    stop = true;
    await writing.catch(() => {});
    await writer.close();
    await consumer.close();
    await stream.done;
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("history truncated while disconnected: one resync item with a snapshot, then live", async () => {
  await withSrv(async (srv, connectRaw) => {
    const watch = new Watch();
    let gate: PromiseWithResolvers<void> | null = null;
    const conns: Connection[] = [];
    const dial = async (path: string): Promise<Connection> => {
      await gate?.promise;
      const conn = await dialEndpoint(path);
      conns.push(conn);
      return conn;
    };
    const consumer = await client(srv, 9001, { dial, reconnect: FAST_RECONNECT });
    const stream = collect(consumer.events(), watch);
    const pusher = await connectRaw();
    await pusher.register(9002);
    try {
      const before = await pusher.request({ cmd: "create_workspace", name: "before" });
      await watch.until(
        () => stream.events().some((e) => e.version === before.version),
        "the consumer to see the first workspace",
      );

      gate = Promise.withResolvers<void>();
      conns.at(-1)!.close(); // the consumer's connection drops
      // The server noticed: the consumer's pid exited.
      while ((await pusher.next()).event !== "process_exited") { /* skip */ }

      // More than the 4096-event memory ring, while the consumer is away.
      for (let batch = 0; batch < 10; batch++) {
        const lines = Array.from(
          { length: 500 },
          (_, i) => JSON.stringify({ cmd: "ping", nonce: batch * 500 + i }),
        );
        await pusher.send(lines.join("\n"));
        for (let i = 0; i < 500; i++) await pusher.next();
      }
      gate.resolve();
      await watch.until(
        () => stream.items.some((i) => i.type === "resync"),
        "the resync item",
      );
      await pusher.drainUntilPrivateReply(); // the consumer's register and snapshot
      const after = await pusher.request({ cmd: "create_workspace", name: "after" });
      await watch.until(
        () => stream.events().some((e) => e.version === after.version),
        "the event after the resync",
      );
      const at = stream.items.findIndex((i) => i.type === "resync");
      const resync = stream.items[at] as Extract<StreamItem, { type: "resync" }>;
      assert.equal(resync.reason, "truncated");
      assert.deepEqual(resync.snapshot.workspaces, [[before.workspace_id, "before"]]);
      assert.ok(resync.snapshot.version > before.version + 5000);
      assert.equal(stream.items.filter((i) => i.type === "resync").length, 1);
      const afterward = stream.items.slice(at + 1) as { type: "event"; event: LoggedEvent }[];
      assert.ok(afterward.every((i) => i.event.version > resync.snapshot.version));
      const versions = afterward.map((i) => i.event.version);
      assert.deepEqual(versions, [...versions].sort((a, b) => a - b));
      assert.ok(versions.includes(after.version));
    } finally {
      gate?.resolve();
      await consumer.close();
      await stream.done;
    }
  });
});

Deno.test("a restarted server without a store: resync as diverged, versions start over", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-client-memory-" });
  let srv = await startSrv({ dir });
  const watch = new Watch();
  const consumer = await client(srv, 9101, { reconnect: FAST_RECONNECT });
  const stream = collect(consumer.events(), watch);
  try {
    for (let i = 0; i < 20; i++) await consumer.ping(i);
    const high = consumer.lastVersion;
    await srv.stop("SIGKILL");
    srv = await startSrv({ dir, socket: srv.socket });
    await watch.until(() => stream.items.some((i) => i.type === "resync"), "the resync");
    const resync = stream.items.find((i) => i.type === "resync")!;
    assert.equal(resync.type === "resync" && resync.reason, "diverged");
    const pong = await consumer.ping(99);
    assert.ok(pong.version < high, "the new server's versions are lower");
    await watch.until(
      () => stream.events().some((e) => e.event === "pong" && e.nonce === 99),
      "the new server's events in the stream",
    );
  } finally {
    await consumer.close();
    await stream.done;
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without reconnect a drop ends the stream with ConnectionLostError", async () => {
  const srv = await startSrv();
  const c = await client(srv, 9201, { reconnect: false });
  const stream = c.events();
  try {
    await srv.stop("SIGKILL");
    await assert.rejects(stream.next(), ConnectionLostError);
    await assert.rejects(c.ping(), ConnectionLostError);
    assert.ok(c.closed);
  } finally {
    await c.close();
  }
});

Deno.test("over node:net, the Windows transport, on both ends: commands, stream, drop", async () => {
  const srv = await startSrv({ flags: ["--memory", "--transport", "node"] });
  const watch = new Watch();
  const c = await client(srv, 9301, { dial: connectNamedPipe, reconnect: false });
  const stream = collect(c.events({ since: 0 }), watch);
  const ended = stream.done.then(() => null, (e: Error) => e);
  try {
    const [ws] = await c.command({ cmd: "create_workspace", name: "piped" });
    assert.deepEqual((await c.snapshot()).workspaces, [[ws.workspace_id, "piped"]]);
    await watch.until(
      () => stream.events().some((e) => e.version === ws.version),
      "the workspace in the stream",
    );
    await srv.stop("SIGKILL");
    assert.ok(await ended instanceof ConnectionLostError, "the stream fails for good");
  } finally {
    await c.close();
    await srv.stop();
  }
});
