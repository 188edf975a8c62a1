// Integration: what srv's log says about clients (README "Slow, broken and
// hostile clients"). Each connection's end is logged once, with its cause,
// id, kind and pid; soft mistakes stay at debug; no stack traces for
// anything a client can do.
import assert from "node:assert/strict";
import { withSrv } from "../../_harness.ts";

function linesAbout(log: string, conn: number): string[] {
  return log.split("\n").filter((l) => l.includes(`connection ${conn} `));
}

Deno.test("at the default level: one warn line per fatal close, nothing for soft mistakes or plain closes", async () => {
  await withSrv(async (srv, connect) => {
    const observer = await connect(); // connection 1
    await observer.register(1);

    const overLong = await connect(); // connection 2
    await overLong.register(70);
    await overLong.send("{not json"); // soft: answered, not logged at info
    assert.equal((await overLong.next()).code, "invalid_command");
    await overLong.send(`{"cmd":"ping","pad":"${"x".repeat(2048)}"}`);
    assert.equal((await overLong.next()).fatal, true);
    assert.ok(await overLong.closedByServer());

    const early = await connect(); // connection 3
    assert.equal((await early.request({ cmd: "goodbye" })).fatal, true);
    assert.ok(await early.closedByServer());

    const plain = await connect(); // connection 4
    await plain.register(71);
    await plain.dispose();

    // Every close above has happened once the observer has seen the last
    // process_exited and its own query is answered after it.
    const seen = [];
    while (seen.filter((e) => e.event === "process_exited").length < 2) {
      seen.push(await observer.next());
    }
    assert.equal((await observer.request({ cmd: "get_server_info" })).connections, 1);

    const log = srv.stderr();
    assert.deepEqual(linesAbout(log, 1), []);
    const two = linesAbout(log, 2);
    assert.equal(two.length, 1, log);
    assert.match(
      two[0],
      /WRN.*connection 2 \(kind="?tool"?, pid=70\) closed: "?fatal invalid_command: line exceeds 1024 bytes/,
    );
    const three = linesAbout(log, 3);
    assert.equal(three.length, 1, log);
    assert.match(
      three[0],
      /WRN.*connection 3 \(kind="?unregistered"?, pid=null\) closed: "?fatal not_registered: Goodbye before Register/,
    );
    assert.deepEqual(linesAbout(log, 4), [], "an ordinary close is debug only");
    assert.doesNotMatch(log, /parse failed/, "soft mistakes are debug only");
    assert.doesNotMatch(log, /\n\s+at |Uncaught|ERR/, "no stack trace, no error");
  }, { flags: ["--memory", "--max-line-bytes", "1024"] });
});

Deno.test("at debug: a soft mistake is logged once with the connection, kind and pid", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    await a.register(5);
    await a.send('{"cmd":"fly"}');
    assert.equal((await a.next()).code, "invalid_command");
    await a.dispose();
    const b = await connect();
    await b.request({ cmd: "ping", nonce: 1 });
    const log = srv.stderr();
    const soft = log.split("\n").filter((l) => l.includes("unknown command `fly`"));
    assert.equal(soft.length, 1, log);
    assert.match(soft[0], /DBG.*connection 1 \(kind="?tool"?, pid=5\): "?invalid_command"?: /);
    const closed = log.split("\n").filter((l) => /connection 1 .*closed/.test(l));
    assert.equal(closed.length, 1, log);
    assert.match(closed[0], /closed: "?end of stream/);
  }, { flags: ["--memory", "--log-level", "debug"] });
});
