// In-process: a bug while handling one client's line (here an injected id
// source that throws) is logged once, with its stack, and drops only that
// connection; srv keeps serving everyone else, and the dropped client's pid
// still gets its synthetic goodbye.
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "../../deps.ts";
import { listenUnix } from "../../srv/transport/unix.ts";
import { Server } from "../../srv/server/server.ts";
import { TestClient, unixOnly } from "../_harness.ts";

Deno.test("a bug while handling a line drops that connection only, logged once with its stack", {
  ignore: unixOnly("listens on a Unix socket in-process"),
}, async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (r) => records.push(r) },
    loggers: [
      { category: ["srv"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["memory"] },
    ],
  });
  const dir = await Deno.makeTempDir({ prefix: "srv-fault-" });
  let explode = false;
  const server = new Server({
    identity: { pid: 4242, version: "test", instanceId: "fault" },
    newId: () => {
      if (explode) throw new TypeError("injected bug");
      return crypto.randomUUID();
    },
  });
  const serving = server.serve(listenUnix(`${dir}/srv.sock`));
  const a = await TestClient.connect(`${dir}/srv.sock`);
  const b = await TestClient.connect(`${dir}/srv.sock`);
  try {
    await a.register(10);
    await b.take(3);
    await b.register(11);
    await a.take(2);
    explode = true;
    await a.send({ cmd: "create_workspace", name: "boom" });
    assert.ok(await a.closedByServer(), "the connection that hit the bug is dropped");
    assert.deepEqual(await b.next(), { event: "process_exited", pid: 10, code: 0, version: 6 });
    explode = false;
    assert.deepEqual(await b.request({ cmd: "ping", nonce: 1 }), {
      event: "pong",
      nonce: 1,
      version: 7,
    });

    const errors = records.filter((r) => r.level === "error");
    assert.equal(errors.length, 1, "logged once");
    const props = errors[0].properties as Record<string, unknown>;
    assert.equal(props.kind, "tool");
    assert.equal(props.pid, 10);
    assert.equal(props.reason, "internal error while handling its input");
    assert.match(String((props.error as Error).stack), /injected bug\n\s+at /);
  } finally {
    await a.dispose();
    await b.dispose();
    await server.shutdown(100);
    await serving;
    await Deno.remove(dir, { recursive: true });
    await reset();
  }
});
