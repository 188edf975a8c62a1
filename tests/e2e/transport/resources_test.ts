// Integration: what a connection holds in srv (a descriptor, a queue, a
// process record) is given back however the connection ends, and running
// out of descriptors slows srv down instead of killing it.
import assert from "node:assert/strict";
import { type Json, TestClient, unixTransportOnly, withSrv } from "../../_harness.ts";
import { connectionSocketCount, linuxOnly, waitUntil } from "../../_proc.ts";
import { HalfClosedClient } from "../../_half_closed.ts";

const encoder = new TextEncoder();

async function rawConnect(path: string): Promise<Deno.UnixConn> {
  return await Deno.connect({ transport: "unix", path });
}

async function writeAll(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

function register(pid: number): string {
  return `{"cmd":"register","kind":"tool","pid":${pid},"version":"t"}\n`;
}

/**
 * Asks srv how many connections it holds, observer included. Broadcasts
 * that arrive before the answer go to `seen`.
 */
async function connections(client: TestClient, seen: Json[] = []): Promise<number> {
  await client.send({ cmd: "get_server_info" });
  while (true) {
    const e = await client.next();
    if (e.event === "server_info") return e.connections;
    seen.push(e);
  }
}

Deno.test(
  "idle, half-written, mid-broadcast and fatal disconnects leak no descriptor, connection or process record",
  {
    ignore: linuxOnly("counts srv's sockets in /proc") ||
      unixTransportOnly(
        "node:net drops a client's unread commands once a write to it fails (README, Transports)",
      ),
  },
  async () => {
    await withSrv(async (srv, connect) => {
      const observer = await connect();
      await observer.register(1);
      assert.equal(await connections(observer), 1);
      assert.equal(connectionSocketCount(srv.pid, srv.socket), 1);

      // A workspace with fat meta makes each snapshot broadcast large, so a
      // client that stops reading has a write in flight when it drops.
      const ws = await observer.request({ cmd: "create_workspace", name: "w" });
      await observer.send({
        cmd: "update_workspace_meta",
        workspace_id: ws.workspace_id,
        meta_patch: { pad: "p".repeat(32 * 1024) },
      });
      await observer.next();

      const registeredPids: number[] = [];
      const conns: Deno.UnixConn[] = [];
      let pid = 100;
      // Idle: connect, say nothing.
      for (let i = 0; i < 10; i++) conns.push(await rawConnect(srv.socket));
      // Half a line, unregistered.
      for (let i = 0; i < 10; i++) {
        const c = await rawConnect(srv.socket);
        await writeAll(c, '{"cmd":"ping","non');
        conns.push(c);
      }
      // Registered, then half a line.
      for (let i = 0; i < 10; i++) {
        const c = await rawConnect(srv.socket);
        registeredPids.push(++pid);
        await writeAll(c, register(pid) + '{"cmd":"create_workspace","na');
        conns.push(c);
      }
      // Registered and never reading, about to drop in the middle of a flood.
      const midBroadcast: Deno.UnixConn[] = [];
      for (let i = 0; i < 10; i++) {
        const c = await rawConnect(srv.socket);
        registeredPids.push(++pid);
        await writeAll(c, register(pid));
        midBroadcast.push(c);
      }
      // Every registration is broadcast; once the observer has them all, srv
      // has read every byte written so far.
      const spawned = new Set<number>();
      while (spawned.size < registeredPids.length) {
        const e = await observer.next();
        if (e.event === "process_spawned") spawned.add(e.pid);
      }
      assert.equal(await connections(observer), 41);

      // 30 snapshots of 32 KiB: far more than a socket buffer, so once the
      // observer has them all, srv holds a pending write for each non-reader.
      for (let i = 0; i < 30; i++) await observer.send({ cmd: "get_srv_snapshot" });
      for (let i = 0; i < 30; i++) assert.equal((await observer.next()).event, "srv_snapshot");
      for (const c of midBroadcast) c.close();
      for (const c of conns) c.close();

      // Registered ones that go away yield exactly one process_exited each,
      // all sent before srv counts the connection gone.
      const seen: Json[] = [];
      await waitUntil("srv holds only the observer", async () => {
        return await connections(observer, seen) === 1;
      });
      const exited = seen.filter((e) => e.event === "process_exited").map((e) => e.pid);
      assert.deepEqual(exited.sort((a, b) => a - b), registeredPids);
      assert.deepEqual(seen.filter((e) => e.event !== "process_exited"), []);

      // Descriptors come back once srv has finished closing them (a closing
      // connection first drains what it is owed).
      await waitUntil(
        "srv holds only the observer's socket",
        () => connectionSocketCount(srv.pid, srv.socket) === 1,
      );

      // Records are Exited, not stuck Running: every pid may register again.
      for (const p of registeredPids) {
        const again = await rawConnect(srv.socket);
        await writeAll(again, register(p));
        again.close();
      }
      let reRegistered = 0;
      let exitedAgain = 0;
      while (exitedAgain < registeredPids.length) {
        const e = await observer.next();
        assert.notEqual(e.event, "error", JSON.stringify(e));
        if (e.event === "registered") reRegistered++;
        if (e.event === "process_exited") exitedAgain++;
      }
      assert.equal(reRegistered, registeredPids.length);
    });
  },
);

Deno.test({
  name: "a command sent after srv's write to that client failed is still served",
  ignore: linuxOnly("shuts down a socket's read side through Linux libc") ||
    unixTransportOnly(
      "node:net drops a client's unread commands once a write to it fails (README, Transports)",
    ),
  fn: async () => {
    await withSrv(async (srv, connect) => {
      const observer = await connect();
      await observer.register(1);
      const client = new HalfClosedClient(srv.socket);
      try {
        await waitUntil(
          "srv has accepted the client",
          async () => await connections(observer) === 2,
        );
        client.shutdownRead();
        // A broadcast srv must try to write to the client; once the observer
        // has it, srv has seen that write fail.
        assert.equal((await observer.request({ cmd: "ping", nonce: 1 })).event, "pong");
        // The client's last words, then it is gone: `echo … | socat` does this.
        client.write(register(300));
      } finally {
        client.close();
      }
      const events = await observer.take(3);
      assert.deepEqual(events.map((e) => [e.event, e.pid]), [
        ["process_spawned", 300],
        ["registered", undefined],
        ["process_exited", 300],
      ]);
    });
  },
});
