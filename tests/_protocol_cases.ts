// Protocol cases run twice: in-process over the memory transport
// (tests/server/server_test.ts) and over a real socket on each transport
// (tests/e2e/transport/server_test.ts, the smoke test of the transport).
// One body each, handed the harness to run under.
import assert from "node:assert/strict";
import type { TestClient } from "./_harness.ts";
import { SRV_VERSION } from "../srv/version.ts";

/** What a case needs of a running srv, in-process or a process. */
export interface CaseSrv {
  readonly pid: number;
  readonly instance: string;
}

/** `withSrv` of either harness. */
export type Harness = (
  fn: (srv: CaseSrv, connect: () => Promise<TestClient>) => Promise<void>,
  options?: { flags?: string[] },
) => Promise<void>;

/** docs/PROTOCOL.md §9 replayed line by line across two clients. */
export function replaySection9(withSrv: Harness): () => Promise<void> {
  return async () => {
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
          protocol: 2,
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
  };
}

/** The line cap closes only the offender, and its pid gets a synthetic goodbye. */
export function lineCapClosesOffender(withSrv: Harness): () => Promise<void> {
  return async () => {
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
  };
}

/** A last line without `\n` before the client shuts down writing is still served. */
export function lastLineBeforeHalfClose(withSrv: Harness): () => Promise<void> {
  return async () => {
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
  };
}
