// Integration: a real srv process on a real socket in a temp dir, on the
// transport under test (SRV_TEST_TRANSPORT). The protocol itself is tested
// in-process (tests/server/server_test.ts); a few of those tests run here too,
// as the smoke test of the transport: framing, broadcast across
// connections, half-close and a server-side close all cross the real socket.
import assert from "node:assert/strict";
import { runSrv, startSrv, TestClient, unixOnly, withSrv } from "../../_harness.ts";
import { SRV_VERSION } from "../../../srv/version.ts";
import { parseServeArgs } from "../../../srv/cli/serve_args.ts";

Deno.test("PROTOCOL.md §9 replayed line by line across two clients", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    const b = await connect();

    // A→ register: every open connection sees the three events, B included.
    await a.send('{"cmd":"register","kind":"host","pid":100,"version":"1.0"}');
    const spawned =
      '{"event":"process_spawned","pid":100,"kind":"host","client_version":"1.0","version":1}';
    const running =
      '{"event":"lifecycle_phase_changed","from":"starting","to":"running","version":2}';
    const registeredLines: string[] = [];
    for (const client of [a, b]) {
      assert.equal(await client.nextLine(), spawned);
      assert.equal(await client.nextLine(), running);
      const line = await client.nextLine();
      registeredLines.push(line);
      const registered = JSON.parse(line);
      assert.deepEqual(registered, {
        event: "registered",
        client_id: 1,
        launcher_pid: srv.pid,
        launcher_version: SRV_VERSION,
        instance_id: srv.instance,
        protocol: 1,
        version: 3,
      });
      assert.ok(line.startsWith('{"event":"registered","client_id":1,"launcher_pid":'));
      assert.ok(line.endsWith(',"version":3}'));
    }
    assert.equal(registeredLines[0], registeredLines[1], "one serialization for everyone");

    // A→ get_srv_snapshot: broadcast, version 4.
    await a.send({ cmd: "get_srv_snapshot" });
    for (const client of [a, b]) {
      const snap = await client.next();
      assert.equal(snap.event, "srv_snapshot");
      assert.equal(snap.lifecycle, "running");
      assert.deepEqual(snap.workspaces, []);
      assert.deepEqual(snap.tabs, []);
      assert.deepEqual(snap.active_tabs, []);
      assert.deepEqual(snap.blocks, []);
      assert.equal(snap.version, 4);
    }

    // A→ get_events since 0: private, the three logged events as broadcast,
    // version 4 (current, not bumped).
    await a.send({ cmd: "get_events", since: 0 });
    const list = await a.nextLine();
    assert.equal(
      list,
      `{"event":"event_list","events":[${spawned},${running},${registeredLines[0]}],` +
        `"truncated":false,"instance_id":"${srv.instance}","version":4}`,
    );
    assert.deepEqual(await b.drainUntilPrivateReply(), [], "event_list is private to A");

    // B→ ping before register: private, version 0.
    await b.send({ cmd: "ping", nonce: 1 });
    assert.equal(
      await b.nextLine(),
      '{"event":"error","code":"not_registered","message":"Ping before Register","fatal":false,"version":0}',
    );
    assert.deepEqual(
      await a.drainUntilPrivateReply(),
      [],
      "the not_registered error is private to B",
    );

    // B→ register pid 100 while A holds it: broadcast error, version 5.
    await b.send('{"cmd":"register","kind":"tool","pid":100,"version":"x"}');
    const refused =
      '{"event":"error","code":"already_registered","message":"pid 100 is already registered with srv","fatal":false,"version":5}';
    assert.equal(await a.nextLine(), refused);
    assert.equal(await b.nextLine(), refused);

    // A disconnects without goodbye: synthetic goodbye, broadcast.
    await a.dispose();
    assert.equal(await b.nextLine(), '{"event":"process_exited","pid":100,"code":0,"version":6}');

    // The pid is Exited, so B may now register it (its earlier refusal left B unregistered).
    const events = await b.register(100, "tool", "x");
    assert.deepEqual(events.map((e) => [e.event, e.version]), [["process_spawned", 7], [
      "registered",
      8,
    ]]);
    assert.equal(events[1].client_id, 2);
  });
});

Deno.test("the line cap closes only the offender, and its pid gets a synthetic goodbye", async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(70);
    await b.take(3);
    await b.register(71);
    await a.take(2);
    await a.send(`{"cmd":"ping","nonce":1,"pad":"${"x".repeat(2000)}"}`);
    const e = await a.next();
    assert.equal(e.event, "error");
    assert.equal(e.code, "invalid_command");
    assert.equal(e.fatal, true);
    assert.equal(e.version, 0);
    assert.ok(await a.closedByServer());
    assert.deepEqual(await b.next(), { event: "process_exited", pid: 70, code: 0, version: 6 });
    assert.deepEqual(await b.request({ cmd: "ping", nonce: 3 }), {
      event: "pong",
      nonce: 3,
      version: 7,
    });
  }, { flags: ["--memory", "--max-line-bytes", "1024"] });
});

Deno.test("a last line without \\n before the client shuts down writing is still served", {
  ignore: unixOnly("half-close test: a Windows named pipe has no write-only shutdown"),
}, async () => {
  await withSrv(async (_srv, connect) => {
    const a = await connect();
    await a.writeRaw(
      new TextEncoder().encode('{"cmd":"register","kind":"tool","pid":3,"version":"1"}'),
    );
    await a.closeWrite();
    assert.deepEqual((await a.take(3)).map((e) => e.event), [
      "process_spawned",
      "lifecycle_phase_changed",
      "registered",
    ]);
    assert.deepEqual(await a.next(), { event: "process_exited", pid: 3, code: 0, version: 4 });
    assert.ok(await a.closedByServer());
  });
});

Deno.test("readiness line, then SIGTERM: exit 0 and the socket file is gone", {
  ignore: unixOnly("SIGTERM test: Windows has no SIGTERM to catch, and a pipe is no file"),
}, async () => {
  const srv = await startSrv();
  assert.match(
    srv.readyLine,
    new RegExp(
      `^srv ready socket=${srv.socket} pid=\\d+ version=${SRV_VERSION} instance=[0-9a-f-]{36}$`,
    ),
  );
  assert.equal(srv.pid, srv.child.pid);
  const info = await Deno.lstat(srv.socket);
  assert.ok(info.isSocket);
  assert.equal(info.mode! & 0o777, 0o600);
  const client = await TestClient.connect(srv.socket);
  await client.register(1);
  assert.equal(await srv.stop("SIGTERM"), 0);
  assert.ok(await client.closedByServer());
  await client.dispose();
  await assert.rejects(Deno.lstat(srv.socket), Deno.errors.NotFound);
});

Deno.test("SIGINT shuts down gracefully too", {
  ignore: unixOnly("SIGINT test: a child cannot be sent SIGINT on Windows"),
}, async () => {
  const srv = await startSrv();
  const socket = srv.socket;
  assert.equal(await srv.stop("SIGINT"), 0);
  await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound);
});

Deno.test("--help documents every serve flag; a bad flag exits 2 with the reason", async () => {
  const help = await runSrv(["serve", "--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--socket",
      "--memory",
      "--max-line-bytes",
      "--max-connections",
      "--max-queue-bytes",
      "--soft-queue-bytes",
      "--soft-queue-time",
      "--max-reply-bytes",
      "--register-timeout",
      "--log-level",
      "--log-format",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  const bad = await runSrv(["serve", "--no-such-flag"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no-such-flag/);
  const removed = await runSrv(["serve", "--max-queue-events", "10"]);
  assert.equal(removed.code, 2);
  assert.match(removed.stderr, /--max-queue-events was removed: .*--soft-queue-bytes/);
  const softAboveHard = await runSrv([
    "serve",
    "--max-queue-bytes",
    "1000",
    "--soft-queue-bytes",
    "2000",
  ]);
  assert.equal(softAboveHard.code, 2);
  assert.match(softAboveHard.stderr, /--soft-queue-bytes \(2000\) must not be above/);
  const badTime = await runSrv(["serve", "--register-timeout", "soon"]);
  assert.equal(badTime.code, 2);
  assert.match(badTime.stderr, /--register-timeout must be a duration/);
  const badNumber = await runSrv(["serve", "--max-line-bytes", "ten"]);
  assert.equal(badNumber.code, 2);
  assert.match(badNumber.stderr, /--max-line-bytes must be a positive integer/);
  const version = await runSrv(["--version"]);
  assert.equal(version.stdout.trim(), `srv ${SRV_VERSION}`);
});

Deno.test("delivery flags: durations in s or ms, and a soft limit that follows a low hard one", () => {
  const defaults = parseServeArgs([]);
  assert.deepEqual(
    [defaults.maxQueueBytes, defaults.softQueueBytes, defaults.softQueueMs],
    [256 * 1024 * 1024, 8 * 1024 * 1024, 10_000],
  );
  assert.equal(defaults.registerTimeoutMs, 10_000);
  assert.equal(defaults.maxReplyBytes, 64 * 1024 * 1024);
  assert.equal(parseServeArgs(["--soft-queue-time", "500ms"]).softQueueMs, 500);
  assert.equal(parseServeArgs(["--soft-queue-time", "2s"]).softQueueMs, 2000);
  assert.equal(parseServeArgs(["--register-timeout", "1.5"]).registerTimeoutMs, 1500);
  assert.equal(parseServeArgs(["--max-queue-bytes", "65536"]).softQueueBytes, 65536);
  assert.throws(() => parseServeArgs(["--soft-queue-time", "0"]), /from 1 ms to 1 h/);
});
