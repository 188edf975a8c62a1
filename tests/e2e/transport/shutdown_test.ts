// Integration: graceful shutdown (README "Exit codes"): SIGINT/SIGTERM
// stop accepting, drain queued output up to a deadline, close, exit 0; a
// second signal exits at once with 130.
import assert from "node:assert/strict";
import { type SrvProcess, startSrv, TestClient, unixOnly } from "../../_harness.ts";
import { waitUntil } from "../../_proc.ts";

Deno.test(
  "a signal the moment srv says ready is handled: graceful exit 0, never the default kill",
  { ignore: unixOnly("Unix signals") },
  async () => {
    // Several at once, so the CPUs are busy and a signal can land between the
    // readiness line and whatever srv does next.
    const codes = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const srv = await startSrv();
        return await srv.stop(i % 2 === 0 ? "SIGTERM" : "SIGINT");
      }),
    );
    assert.deepEqual(codes, Array(8).fill(0));
  },
);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A srv where `sleeper` (registered as pid 11, never reading) has far more
 * output queued than its socket buffer holds, and `flooder` (pid 10) has
 * read everything. Returns the version of the last event.
 */
async function withBacklog(
  fn: (srv: SrvProcess, flooder: TestClient, sleeper: Deno.UnixConn, last: number) => Promise<void>,
): Promise<void> {
  const srv = await startSrv();
  const flooder = await TestClient.connect(srv.socket);
  const sleeper = await Deno.connect({ transport: "unix", path: srv.socket });
  try {
    await flooder.register(10);
    await sleeper.write(
      encoder.encode('{"cmd":"register","kind":"tool","pid":11,"version":"z"}\n'),
    );
    await flooder.take(2);
    const ws = await flooder.request({ cmd: "create_workspace", name: "w" });
    await flooder.send({
      cmd: "update_workspace_meta",
      workspace_id: ws.workspace_id,
      meta_patch: { pad: "x".repeat(60 * 1024) }, // under the 64 KiB meta cap
    });
    await flooder.next();
    // 40 snapshots of 64 KiB: 2.5 MiB for the sleeper, within the default
    // soft limit (8 MiB) but ten times a socket buffer.
    for (let i = 0; i < 40; i++) await flooder.send({ cmd: "get_srv_snapshot" });
    const snapshots = await flooder.take(40);
    await fn(srv, flooder, sleeper, snapshots.at(-1).version);
  } finally {
    sleeper.close();
    await flooder.dispose();
    await srv.stop("SIGKILL");
  }
}

/** Waits until srv has logged that it is shutting down (the signal was handled). */
async function shuttingDown(srv: SrvProcess): Promise<void> {
  await waitUntil("srv logs its shutdown", () => /received; shutting down/.test(srv.stderr()));
}

/** Reads a raw connection to its end: the text, and whether it ended cleanly. */
async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return text + decoder.decode();
    text += decoder.decode(buf.subarray(0, n), { stream: true });
  }
}

Deno.test("SIGTERM drains queued output to a client that reads late, then closes and exits 0", {
  ignore: unixOnly("Unix signals"),
}, async () => {
  await withBacklog(async (srv, flooder, sleeper, last) => {
    srv.child.kill("SIGTERM");
    await shuttingDown(srv);
    // Only now does the sleeper read: everything srv had queued arrives,
    // whole, then the end of the stream.
    const text = await readAll(sleeper);
    assert.ok(text.endsWith("\n"), "no torn last line");
    const versions = text.trimEnd().split("\n").map((l) => JSON.parse(l).version);
    // Where its stream starts depends on when srv accepted it (its own
    // registration, version 4, at the latest); from there on, nothing missing.
    const first = versions[0];
    assert.ok(first <= 4, `first version ${first}`);
    assert.deepEqual(
      versions,
      Array.from({ length: last - first + 1 }, (_, i) => first + i),
      "every event up to the last, no gap",
    );
    assert.ok(await flooder.closedByServer());
    assert.equal(await srv.exited(), 0);
    assert.doesNotMatch(srv.stderr(), /drain deadline/);
  });
});

Deno.test("a client that never reads cannot hold shutdown past the drain deadline", {
  ignore: unixOnly("Unix signals"),
}, async () => {
  await withBacklog(async (srv, _flooder, sleeper) => {
    srv.child.kill("SIGTERM");
    // No read from the sleeper: srv gives up on it at the deadline and exits.
    assert.equal(await srv.exited(), 0);
    assert.match(
      srv.stderr(),
      /connection \d+ \(kind="?tool"?, pid=11\) closed: "?drain deadline \(2000 ms\) passed with output unsent/,
    );
    await assert.rejects(Deno.lstat(srv.socket), Deno.errors.NotFound);
    const text = await readAll(sleeper);
    assert.ok(text.length > 0, "it got what its socket buffer held, then the close");
  });
});

Deno.test("a second signal during the drain exits at once with 130", {
  ignore: unixOnly("Unix signals"),
}, async () => {
  await withBacklog(async (srv) => {
    srv.child.kill("SIGTERM");
    await shuttingDown(srv);
    // Repeats within 300 ms of the first count as the same keypress echoed
    // (deno task forwards it too), so keep signalling until srv is gone.
    const exit = srv.exited();
    let code: number | null = null;
    exit.then((c) => (code = c));
    while (code === null) {
      try {
        srv.child.kill("SIGINT");
      } catch {
        break; // already exited
      }
      await Promise.race([exit, new Promise((r) => setTimeout(r, 50))]);
    }
    assert.equal(await exit, 130, srv.stderr());
    assert.match(srv.stderr(), /second SIGINT during shutdown; exiting now/);
    assert.doesNotMatch(srv.stderr(), /drain deadline/, "it did not wait for the deadline");
    await assert.rejects(Deno.lstat(srv.socket), Deno.errors.NotFound, "socket removed");
  });
});
