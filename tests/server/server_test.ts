// In-process: the server over the in-memory transport. Replays docs/PROTOCOL.md
// §9 and pins the routing, version and framing rules of §1, §5 and §6 as a
// client written from the document sees them. (tests/e2e/transport/server_test.ts
// replays a few of these over a real socket, on each transport.)
import assert from "node:assert/strict";
import { withServer as withSrv } from "../_in_process.ts";
import {
  lastLineBeforeHalfClose,
  lineCapClosesOffender,
  replaySection9,
} from "../_protocol_cases.ts";
import { SRV_VERSION } from "../../srv/version.ts";
import { waitUntil } from "../_proc.ts";

Deno.test("docs/PROTOCOL.md §9 replayed line by line across two clients", replaySection9(withSrv));

Deno.test("event_list carries the current version without bumping it", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.register(1);
    await a.send({ cmd: "ping", nonce: 9 });
    assert.equal((await a.next()).version, 4);
    for (let i = 0; i < 3; i++) {
      const list = await a.request({ cmd: "get_events", since: 3 });
      assert.equal(list.version, 4);
      assert.deepEqual(list.events, [{ event: "pong", nonce: 9, version: 4 }]);
    }
    const pong = await a.request({ cmd: "ping", nonce: 10 });
    assert.equal(pong.version, 5, "no gap: event_list took no version");
    assert.deepEqual((await a.request({ cmd: "get_events", since: 5 })).events, []);
  });
});

Deno.test("goodbye: the sender and others see process_exited, then the server closes the sender", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(41);
    await b.take(3);
    await a.send({ cmd: "goodbye" });
    const exited = { event: "process_exited", pid: 41, code: 0, version: 4 };
    assert.deepEqual(await a.next(), exited);
    assert.ok(await a.closedByServer(), "connection closed after goodbye");
    assert.deepEqual(await b.next(), exited);
    assert.deepEqual(await b.drainUntilPrivateReply(), [], "no second process_exited");
  });
});

Deno.test("goodbye before register is fatal: error, then close", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    assert.deepEqual(await a.request({ cmd: "goodbye" }), {
      event: "error",
      code: "not_registered",
      message: "Goodbye before Register",
      fatal: true,
      version: 0,
    });
    assert.ok(await a.closedByServer());
  });
});

Deno.test("a parse error leaves the connection usable", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.register(5);
    for (const bad of ["{not json", '{"cmd":"fly"}', '{"cmd":"ping"}', "[]"]) {
      const e = await a.request(bad);
      assert.equal(e.event, "error");
      assert.equal(e.code, "invalid_command");
      assert.equal(e.version, 0);
      assert.equal(e.fatal, false);
      assert.match(e.message, /^parse failed: /);
    }
    assert.deepEqual(await a.request({ cmd: "ping", nonce: 2 }), {
      event: "pong",
      nonce: 2,
      version: 4,
    });
  });
});

Deno.test("a second register on one connection is a private error; the reducer is not called", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(5);
    await b.take(3);
    assert.deepEqual(await a.request({ cmd: "register", kind: "tool", pid: 6, version: "1" }), {
      event: "error",
      code: "already_registered",
      message: "Register sent twice on the same connection",
      fatal: false,
      version: 0,
    });
    assert.deepEqual(await b.drainUntilPrivateReply(), []);
    assert.equal((await a.request({ cmd: "ping", nonce: 1 })).version, 4);
  });
});

Deno.test("nonces up to 2^64-1 come back in pong digit for digit", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.register(5);
    for (const nonce of ["0", "9007199254740993", "18446744073709551615"]) {
      await a.send(`{"cmd":"ping","nonce":${nonce}}`);
      const line = await a.nextLine();
      assert.match(line, new RegExp(`^\\{"event":"pong","nonce":${nonce},"version":\\d+\\}$`));
    }
  });
});

Deno.test("launcher-pipe commands: not_registered before register, broadcast refusal after", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    assert.equal(
      (await a.request({ cmd: "report_exit", code: 1 })).message,
      "Command before Register",
    );
    await a.register(5);
    assert.deepEqual(await a.request({ cmd: "get_snapshot" }), {
      event: "error",
      code: "invalid_command",
      message: "srv reducer does not accept: get_snapshot",
      fatal: false,
      version: 4,
    });
  });
});

Deno.test("CRLF endings, blank lines and a batch of lines in one write all work", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.writeRaw(
      new TextEncoder().encode(
        '\r\n   \n{"cmd":"register","kind":"tool","pid":9,"version":"v"}\r\n\n{"cmd":"ping","nonce":1}\r\n{"cmd":"ping","nonce":2}\n',
      ),
    );
    const events = await a.take(5);
    assert.deepEqual(events.map((e) => e.event), [
      "process_spawned",
      "lifecycle_phase_changed",
      "registered",
      "pong",
      "pong",
    ]);
    assert.deepEqual(events.map((e) => e.version), [1, 2, 3, 4, 5]);
  });
});

Deno.test("invalid UTF-8 gets a private invalid_command and the connection stays open", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.register(5);
    await a.writeRaw(new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d, 0x0a]));
    const e = await a.next();
    assert.equal(e.code, "invalid_command");
    assert.equal(e.version, 0);
    assert.equal(e.fatal, false);
    assert.equal((await a.request({ cmd: "ping", nonce: 1 })).event, "pong");
  });
});

Deno.test(
  "the line cap closes only the offender, and its pid gets a synthetic goodbye",
  lineCapClosesOffender(withSrv),
);

Deno.test("past --max-connections a new connection gets a fatal error and is closed", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(1);
    await b.take(3);
    await b.register(2);
    await a.take(2);
    const c = await connect();
    const e = await c.next();
    assert.equal(e.code, "invalid_command");
    assert.equal(e.fatal, true);
    assert.equal(e.version, 0);
    assert.match(e.message, /too many connections \(limit 2\)/);
    assert.ok(await c.closedByServer());
    assert.equal(
      (await b.request({ cmd: "ping", nonce: 1 })).event,
      "pong",
      "existing ones still served",
    );
    await a.next();
    // Once b is gone (its synthetic goodbye proves the server saw it), a slot is free again.
    await b.dispose();
    assert.deepEqual(await a.next(), { event: "process_exited", pid: 2, code: 0, version: 7 });
    assert.equal((await a.request({ cmd: "get_server_info" })).connections, 1);
    const d = await connect();
    assert.equal((await d.request({ cmd: "ping", nonce: 1 })).code, "not_registered");
  }, { flags: ["--memory", "--max-connections", "2"] });
});

Deno.test("a connection still draining its replies after goodbye counts against --max-connections", async () => {
  // §10: replies a client has not read are bounded per connection, so
  // connections must be bounded too. One that said goodbye without reading
  // was dropped from the count at once while srv still held its output for
  // the drain deadline: reconnecting this way held any number of them.
  await withSrv(async (srv, connect) => {
    const a = await connect();
    await a.register(1);
    // A pipe too small for the registered reply: srv's output waits in its queue.
    const quiet = srv.rawConnect(16);
    await quiet.write(new TextEncoder().encode(
      '{"cmd":"register","kind":"tool","pid":2,"version":"t","observe":true}\n' +
        '{"cmd":"get_srv_snapshot"}\n{"cmd":"goodbye"}\n',
    ));
    await waitUntil(
      "srv saw the goodbye",
      () => srv.stderr().includes("(kind=observer, pid=null) closed: goodbye"),
    );
    const c = await connect();
    const e = await c.next();
    assert.match(e.message, /too many connections \(limit 2\)/);
    assert.ok(await c.closedByServer());
    // Once its output is read, the slot is free again.
    while ((await quiet.read()) !== null) { /* drain */ }
    await waitUntil("a slot is free again", async () => {
      const d = await connect();
      const reply = await d.request({ cmd: "ping", nonce: 1 });
      await d.dispose();
      return reply.code === "not_registered";
    });
  }, { flags: ["--memory", "--max-connections", "2"] });
});

Deno.test(
  "a last line without \\n before the client shuts down writing is still served",
  lastLineBeforeHalfClose(withSrv),
);

Deno.test("get_server_info answers privately with version 0", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    await a.register(1);
    const info = await a.request({ cmd: "get_server_info" });
    assert.equal(info.event, "server_info");
    assert.equal(info.pid, srv.pid);
    assert.equal(info.server_version, SRV_VERSION);
    assert.equal(info.instance_id, srv.instance);
    assert.equal(info.connections, 1);
    assert.equal(info.event_version, 3);
    assert.deepEqual(info.log, { oldest: 1, newest: 3, retained: 3 });
    assert.equal(info.store, null);
    assert.deepEqual(info.last_command, { cmd: "register", first: 1, last: 3 });
    assert.equal(info.version, 0);
    assert.ok(info.uptime_ms >= 0);
  });
});

Deno.test("server_info.last_command names this connection's last reduced command and its versions", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(1);
    await b.register(2);
    await b.drainUntilPrivateReply();
    assert.deepEqual((await a.drainUntilPrivateReply()).map((e) => e.version), [4, 5]);
    assert.deepEqual((await a.request({ cmd: "get_server_info" })).last_command, {
      cmd: "register",
      first: 1,
      last: 3,
    });
    const ws = await b.request({ cmd: "create_workspace", name: "w" });
    await a.next(); // b's workspace_created
    // a's command emits two events; b's command (another connection) does not count.
    await a.send({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "t" });
    const [created, active] = await a.take(2);
    assert.deepEqual([created.event, active.event], ["tab_created", "active_tab_changed"]);
    await b.send({ cmd: "create_workspace", name: "other" });
    await a.next();
    // A parse error and a query are not reduced: last_command stays.
    await a.send("#not json");
    assert.equal((await a.next()).code, "invalid_command");
    await a.send({ cmd: "get_events", since: 0 });
    assert.equal((await a.next()).event, "event_list");
    assert.deepEqual((await a.request({ cmd: "get_server_info" })).last_command, {
      cmd: "create_tab",
      first: created.version,
      last: active.version,
    });
    // A command that changes nothing reports no versions.
    await a.send({ cmd: "delete_block", tab_id: created.tab_id, block_id: "nope" });
    assert.deepEqual((await a.request({ cmd: "get_server_info" })).last_command, {
      cmd: "delete_block",
      first: null,
      last: null,
    });
    await b.drainUntilPrivateReply();
    assert.equal(
      (await b.request({ cmd: "get_server_info" })).last_command.cmd,
      "create_workspace",
    );
  });
});

Deno.test("a client that said goodbye is logged under the kind and pid it registered with", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect(); // connection 1
    await a.register(43);
    await a.send({ cmd: "goodbye" });
    assert.equal((await a.next()).event, "process_exited");
    assert.ok(await a.closedByServer());
    const closed = () => srv.stderr().split("\n").filter((l) => /connection 1 .*closed/.test(l));
    await waitUntil("connection 1's end is logged", () => closed().length > 0);
    assert.equal(closed().length, 1, srv.stderr());
    assert.match(closed()[0], /connection 1 \(kind="?tool"?, pid=43\) closed: "?goodbye/);
  });
});
