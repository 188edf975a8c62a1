// The in-memory transport itself: writes block on a full pipe until the
// reader reads, half-close and close end the stream after the data, and a
// reset fails the other end. Then the server over it: a connection that
// stops reading is evicted, and the others never wait for it.
import assert from "node:assert/strict";
import { MemoryConnection, MemoryListener } from "../../srv/transport/memory.ts";
import { withServer } from "../_in_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Resolves after pending promise callbacks have run. */
const settle = () => new Promise<void>((r) => setTimeout(r, 0));

Deno.test("memory: a write blocks while the reader is paused and the pipe is full", async () => {
  const [a, b] = MemoryConnection.pair(8);
  await a.write(encoder.encode("1234")); // fits
  b.pauseReading();
  let done = false;
  const blocked = a.write(encoder.encode("56789")).then(() => (done = true));
  await settle();
  assert.equal(done, false, "over capacity: the write waits for the reader");
  assert.equal(b.unread, 9);
  b.resumeReading();
  assert.equal(decoder.decode((await b.read())!), "1234");
  await blocked;
  assert.equal(decoder.decode((await b.read())!), "56789");
  a.close();
  assert.equal(await b.read(), null);
  b.close();
});

Deno.test("memory: half-close ends one direction only; close fails the other end's writes", async () => {
  const [a, b] = MemoryConnection.pair();
  await a.write(encoder.encode("last"));
  await a.closeWrite();
  assert.equal(decoder.decode((await b.read())!), "last");
  assert.equal(await b.read(), null);
  await b.write(encoder.encode("reply"));
  assert.equal(decoder.decode((await a.read())!), "reply");
  await assert.rejects(a.write(encoder.encode("x")), Deno.errors.BrokenPipe);
  b.close();
  assert.equal(await a.read(), null);
  await assert.rejects(a.write(encoder.encode("x")), Deno.errors.BrokenPipe);
  a.close();
  a.close(); // twice is fine
});

Deno.test("memory: a reset fails the other end's read and its blocked write", async () => {
  const [a, b] = MemoryConnection.pair(4);
  a.pauseReading();
  const blocked = b.write(encoder.encode("too much"));
  const reading = b.read();
  a.reset();
  await assert.rejects(blocked, Deno.errors.ConnectionReset);
  await assert.rejects(reading, Deno.errors.ConnectionReset);
  b.close();
});

Deno.test("memory: the listener accepts in order and refuses once closed", async () => {
  const listener = new MemoryListener();
  const first = listener.connect();
  const second = listener.connect();
  const accepted = [];
  for await (const conn of listener) {
    accepted.push(conn);
    if (accepted.length === 2) break;
  }
  await first.write(encoder.encode("1"));
  await second.write(encoder.encode("2"));
  assert.equal(decoder.decode((await accepted[0].read())!), "1");
  assert.equal(decoder.decode((await accepted[1].read())!), "2");
  listener.close();
  assert.throws(() => listener.connect(), Deno.errors.ConnectionRefused);
  for (const c of [first, second, ...accepted]) c.close();
});

Deno.test("in-process: a client that stops reading is evicted; the others see every event", async () => {
  await withServer(async (srv, connect) => {
    const sleeper = srv.rawConnect(16 * 1024);
    await sleeper.write(encoder.encode('{"cmd":"register","kind":"tool","pid":9,"version":"z"}\n'));
    sleeper.pauseReading();
    const a = await connect();
    await a.register(1);
    const ws = await a.request({ cmd: "create_workspace", name: "w" });
    // Each broadcast carries 8 KiB of meta: the sleeper's 64 KiB hard limit
    // is passed after a few, while the pipe holds at most 16 KiB unread.
    const updates = [];
    const exits = [];
    for (let i = 0; i < 16; i++) {
      await a.send({
        cmd: "update_workspace_meta",
        workspace_id: ws.workspace_id,
        meta_patch: { pad: `${i}`.padEnd(8192, "p") },
      });
      // The sleeper's goodbye lands somewhere among a's own answers.
      let e = await a.next();
      if (e.event === "process_exited") exits.push(e), e = await a.next();
      updates.push(e);
    }
    assert.deepEqual(updates.map((e) => e.meta_patch.pad.slice(0, 2).replace(/p/g, "")), [
      ...Array.from({ length: 16 }, (_, i) => `${i}`),
    ]);
    assert.deepEqual(exits.map((e) => [e.event, e.pid]), [["process_exited", 9]]);
    assert.match(srv.stderr(), /evicted/);
    assert.equal((await a.request({ cmd: "get_server_info" })).connections, 1);
  }, {
    flags: ["--memory", "--max-queue-bytes", "65536", "--soft-queue-bytes", "16384"],
  });
});
