// Hostile clients against delivery (issue 11, docs/PROTOCOL.md §7, §10), each a
// row of the table replayed against a real srv process: a client
// that asks and never reads stalls only itself until it is evicted, bursts
// evict nobody, a stalled reader is closed within the documented bytes and
// seconds, broadcasts are held once however many readers owe them, and a
// connection that never registers is closed.
import assert from "node:assert/strict";
import { type Json, TestClient, withSrv } from "../../_harness.ts";
import { linuxOnly, mib, peakRss, rssBytes, waitUntil } from "../../_proc.ts";
import { evictionCount, pipelinedWritersAndReaders, stalledReader } from "../../_delivery.ts";

const encoder = new TextEncoder();

/** Reads a raw connection to its end, counting bytes; resolves with the count. */
async function drainCount(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(256 * 1024);
  let total = 0;
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) return total;
      total += n;
    }
  } catch {
    return total;
  }
}

/** Pipelines `n` commands built by `make`, in writes of 500, and waits for their answers. */
async function pipeline(c: TestClient, n: number, make: (i: number) => Json): Promise<void> {
  for (let done = 0; done < n; done += 500) {
    const count = Math.min(500, n - done);
    const lines = Array.from({ length: count }, (_, i) => JSON.stringify(make(done + i)));
    await c.writeRaw(encoder.encode(lines.join("\n") + "\n"));
    await c.take(count);
  }
}

/**
 * A registered client writes `count` copies of `command` in one write and
 * never reads. srv must stay under 600 MB, keep answering a bystander, and
 * evict the attacker by the soft limit's clock.
 */
function floodNeverRead(label: string, command: string, count: number, store = false): void {
  Deno.test(
    `${count.toLocaleString("en")} × ${label} in one write, never read${
      store ? " (store on: answered from disk)" : ""
    }: srv stays small, the asker stalls until evicted, others keep their round trip`,
    { ignore: linuxOnly("reads srv's RSS from /proc") },
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "srv-flood-" });
      await withSrv(async (srv, connect) => {
        const bystander = await connect();
        await bystander.register(1);
        const ws = await bystander.request({ cmd: "create_workspace", name: "history" });
        // A full ring of 4,096 events of about 1 KiB: each catch-up is ~4 MiB.
        await pipeline(bystander, 4096, (i) => ({
          cmd: "update_workspace_meta",
          workspace_id: ws.workspace_id,
          meta_patch: { pad: `${i}`.padEnd(1000, "h") },
        }));
        // 16 workspaces of 60 KiB of meta: each snapshot is ~1 MiB.
        await pipeline(bystander, 16, (i) => ({ cmd: "create_workspace", name: `big${i}` }));
        const { workspaces } = await bystander.request({ cmd: "get_srv_snapshot" });
        const big = workspaces.filter(([, name]: [string, string]) => name.startsWith("big"));
        await pipeline(bystander, 16, (i) => ({
          cmd: "update_workspace_meta",
          workspace_id: big[i][0],
          meta_patch: { pad: "p".repeat(60 * 1024) },
        }));
        const baseline = rssBytes(srv.pid);

        const attacker = await Deno.connect({ transport: "unix", path: srv.socket });
        try {
          await attacker.write(
            encoder.encode('{"cmd":"register","kind":"tool","pid":66,"version":"x"}\n'),
          );
          const peak = await peakRss(
            srv.pid,
            async () => {
              await attacker.write(encoder.encode(`${command}\n`.repeat(count)));
              // While the attacker is stalled, the bystander's round trips go on.
              for (let i = 0; i < 20; i++) {
                await bystander.send({ cmd: "ping", nonce: i });
                let e: Json;
                do e = await bystander.next(); while (e.event !== "pong" || e.nonce !== i);
              }
              // Those round trips happened while the attacker was stalled,
              // not after it was gone: otherwise this test proves nothing.
              assert.equal(evictionCount(srv), 0, "the attacker was still connected, stalled");
              // The attacker never reads: the soft limit's clock evicts it.
              await waitUntil("srv evicts the attacker", () => evictionCount(srv) === 1, 30_000);
              let exited: Json;
              do exited = await bystander.next(); while (exited.event !== "process_exited");
              assert.equal(exited.pid, 66);
            },
          );
          assert.ok(
            peak < 600 * 1024 * 1024,
            `srv RSS peaked at ${mib(peak)} (baseline ${mib(baseline)})`,
          );
          const line = srv.stderr().split("\n").find((l) => /evicted/.test(l)) ?? "";
          assert.match(line, /pid=66\) closed: "?evicted: \d+ bytes unsent, past the soft limit/);
          // deno-lint-ignore no-console
          console.log(
            `  ${label} flood${store ? " (store)" : ""}: srv rss baseline ${mib(baseline)}, peak ${
              mib(peak)
            }`,
          );
          assert.equal((await bystander.request({ cmd: "get_server_info" })).connections, 1);
        } finally {
          attacker.close();
        }
      }, {
        dir,
        flags: [
          ...(store ? ["--data-dir", `${dir}/data`] : ["--memory"]),
          // The attacker is evicted when this runs out, so it sets the
          // test's length; the bystander's 20 round trips (a few ms) must
          // fit in it, which the test asserts rather than assumes.
          "--soft-queue-time",
          "2s",
        ],
      }).finally(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
    },
  );
}

floodNeverRead("get_events", '{"cmd":"get_events","since":0}', 2114);
floodNeverRead("get_events", '{"cmd":"get_events","since":0}', 2114, true);
floodNeverRead("get_srv_snapshot", '{"cmd":"get_srv_snapshot"}', 2427);

Deno.test("8 writers pipelining 2,500 pings each and 3 readers, at the defaults: nobody is evicted", async () => {
  await withSrv(async (srv) => {
    const report = await pipelinedWritersAndReaders(srv);
    assert.equal(report.evictions, 0, srv.stderr());
    assert.equal(report.incomplete, 0, "every client got all 20,000 pongs");
  });
});

Deno.test("a reader that stops reading is closed within the soft limit's bytes and time; the others never wait for it", async () => {
  await withSrv(async (srv) => {
    const report = await stalledReader(srv);
    // Within the documented bytes: evicted by one of the two rules, and
    // never owed more than the hard limit.
    const match = /evicted: (\d+) bytes unsent, past the (hard|soft) limit/.exec(report.reason);
    assert.ok(match, report.reason);
    assert.ok(Number(match[1]) <= 4 * 1024 * 1024 + 70 * 1024, report.reason);
    assert.ok(report.roundTrips > 0, "the bystander's round trips went on meanwhile");
    // deno-lint-ignore no-console
    console.log(
      `  stalled reader closed after ${Math.round(report.survivedMs)} ms, ${
        mib(report.floodBytes)
      } broadcast, ${report.roundTrips} round trips of a bystander meanwhile`,
    );
  }, {
    flags: [
      "--memory",
      "--max-queue-bytes",
      String(4 * 1024 * 1024),
      "--soft-queue-bytes",
      String(512 * 1024),
      "--soft-queue-time",
      "500ms",
    ],
  });
});

Deno.test(
  "20 × get_srv_snapshot of a 4 MB tree with 100 connected readers: one copy of each snapshot, not one per reader",
  { ignore: linuxOnly("reads srv's RSS from /proc") },
  async () => {
    await withSrv(async (srv, connect) => {
      const owner = await connect();
      await owner.register(1);
      // 64 workspaces with 62 KiB of meta each: a snapshot of about 4 MB.
      const created = await Promise.all(
        Array.from({ length: 64 }, (_, i) => ({ cmd: "create_workspace", name: `w${i}` })).map(
          (c) => owner.send(c),
        ),
      );
      assert.equal(created.length, 64);
      const ids = (await owner.take(64)).map((e) => e.workspace_id);
      for (const id of ids) {
        await owner.send({
          cmd: "update_workspace_meta",
          workspace_id: id,
          meta_patch: { pad: "m".repeat(62 * 1024) },
        });
      }
      await owner.take(64);
      // 97 readers that never read, and 3 that read everything.
      const sleepers: Deno.Conn[] = [];
      const readers: Deno.Conn[] = [];
      for (let i = 0; i < 100; i++) {
        const conn = await Deno.connect({ transport: "unix", path: srv.socket });
        (i < 97 ? sleepers : readers).push(conn);
      }
      await waitUntil(
        "srv holds every connection",
        async () => (await owner.request({ cmd: "get_server_info" })).connections === 101,
      );
      const counted = readers.map(drainCount);
      const baseline = rssBytes(srv.pid);
      try {
        const peak = await peakRss(
          srv.pid,
          async () => {
            await owner.writeRaw(encoder.encode('{"cmd":"get_srv_snapshot"}\n'.repeat(20)));
            for (let i = 0; i < 20; i++) {
              assert.equal((await owner.next()).event, "srv_snapshot");
            }
            // Every sleeper now owes 20 snapshots (80 MB): past the soft
            // limit, under the hard one, evicted when its time runs out.
            await waitUntil(
              "srv evicts the 97 sleepers",
              () => evictionCount(srv) === 97,
              30_000,
            );
          },
        );
        const perReader = 20 * 4 * 1024 * 1024;
        assert.ok(
          peak - baseline < 256 * 1024 * 1024,
          `srv RSS grew by ${mib(peak - baseline)} (baseline ${mib(baseline)}, peak ${
            mib(peak)
          }); one copy per reader would be ${mib(97 * perReader)}`,
        );
        // deno-lint-ignore no-console
        console.log(
          `  snapshot flood, 100 readers: srv rss baseline ${mib(baseline)}, peak ${mib(peak)} (+${
            mib(peak - baseline)
          })`,
        );
        for (const r of readers) r.close();
        for (const bytes of await Promise.all(counted)) {
          assert.ok(bytes > 20 * 62 * 1024 * 64, `a reader that reads got all 20 (${bytes} B)`);
        }
      } finally {
        for (const s of sleepers) s.close();
      }
    }, { flags: ["--memory", "--soft-queue-time", "3s"] });
  },
);
