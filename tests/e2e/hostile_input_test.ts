// Hostile input against a real srv (issue 11, slice "input"): the rows of
// the issue's table about what a client sends, replayed as sent, with the
// behaviour docs/PROTOCOL.md §10 promises instead. Deep JSON is a soft parse
// error and nobody else notices; numbers in meta are doubles end to end
// (wire, state, store, restart); the size caps refuse with an error naming
// the flag; exited process records stay bounded. The long version of the
// register/goodbye cycles runs in `deno task soak --cycles N`.
import assert from "node:assert/strict";
import { evolve, MAX_EXITED_PROCESSES } from "../../srv/core/evolve.ts";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { initialState, snapshotOf, type State } from "../../srv/core/state.ts";
import { listenUnix } from "../../srv/transport/unix.ts";
import { parseJson } from "../../srv/core/codec.ts";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import { Server } from "../../srv/server/server.ts";
import {
  type Json,
  runSrv,
  startSrv,
  TestClient,
  testEndpoint,
  unixOnly,
  withSrv,
} from "../_harness.ts";
import { treeOf as tree } from "../_fixtures.ts";
import { registerCycles } from "../_register_cycles.ts";
import { prng } from "../_random_commands.ts";

/** `{"a":{"a":…1…}}`, `levels` objects deep. */
function nested(levels: number): string {
  return '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
}

async function withDataDir(fn: (dir: string, data: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-hostile-input-" });
  try {
    await fn(dir, `${dir}/data`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A workspace with one tab, made by `c`; returns their ids. */
async function workspaceWithTab(c: TestClient): Promise<{ ws: string; tab: string }> {
  const ws = (await c.request({ cmd: "create_workspace", name: "w" })).workspace_id;
  const tab = (await c.request({ cmd: "create_tab", workspace_id: ws, name: "t" })).tab_id;
  assert.equal((await c.next()).event, "active_tab_changed");
  return { ws, tab };
}

Deno.test("a meta integer beyond 2^53 is the same double on the wire, live, in the store and after restart", async () => {
  await withDataDir(async (dir, data) => {
    const flags = ["--data-dir", data];
    const first = await startSrv({ dir, flags });
    const a = await TestClient.connect(first.socket);
    const b = await TestClient.connect(first.socket);
    await a.register(100);
    await b.take(3);
    const { tab } = await workspaceWithTab(a);
    await b.take(3);
    await a.send(
      `{"cmd":"create_block","tab_id":"${tab}","meta":{"n":12345678901234567890,"m":[18446744073709551615]}}`,
    );
    const line = await b.nextLine();
    assert.equal(await a.nextLine(), line);
    assert.match(line, /"meta":\{"n":12345678901234567000,"m":\[18446744073709552000\]\}/);
    const created = parseJson(line) as Json;
    await a.send(
      `{"cmd":"update_block_meta","block_id":"${created.block_id}","meta_patch":{"p":9007199254740993}}`,
    );
    assert.match(await b.nextLine(), /"meta_patch":\{"p":9007199254740992\}/);
    await a.next();
    const live = await a.request({ cmd: "get_srv_snapshot" });
    const meta = { n: 12345678901234567000, m: [18446744073709552000], p: 9007199254740992 };
    assert.deepEqual(live.meta.blocks[created.block_id], meta);
    const history = (await a.request({ cmd: "get_events", since: 0 })).events;
    await a.dispose();
    await b.dispose();
    // The final checkpoint used to throw "Do not know how to serialize a BigInt" (exit 5).
    assert.equal(await first.stop("SIGTERM"), 0, first.stderr());

    const second = await startSrv({ dir, flags });
    const c = await TestClient.connect(second.socket);
    await c.register(100);
    const restarted = await c.request({ cmd: "get_srv_snapshot" });
    assert.deepEqual(tree(restarted), tree(live));
    assert.deepEqual(
      (await c.request({ cmd: "get_events", since: 0 })).events.slice(0, history.length),
      history,
    );
    await c.dispose();
    assert.equal(await second.stop("SIGTERM"), 0, second.stderr());
  });
});

Deno.test("an 8,000-level patch and a 100,000-level meta are soft parse errors; srv snapshot and events still work", async () => {
  await withSrv(async (srv, connect) => {
    const attacker = await connect();
    const bystander = await connect();
    await attacker.register(100);
    await bystander.take(3);
    const { tab } = await workspaceWithTab(attacker);
    await bystander.take(3);
    const block = (await attacker.request({ cmd: "create_block", tab_id: tab })).block_id;
    await bystander.next();

    await attacker.send(
      `{"cmd":"update_block_meta","block_id":"${block}","meta_patch":${nested(8000)}}`,
    );
    await attacker.send(`{"cmd":"create_block","tab_id":"${tab}","meta":${nested(100_000)}}`);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await attacker.next(), {
        event: "error",
        code: "invalid_command",
        message: "parse failed: JSON nested deeper than 64 levels",
        fatal: false,
        version: 0,
      });
    }
    // The attacker's connection is still open and usable; the bystander saw nothing.
    assert.equal((await attacker.request({ cmd: "ping", nonce: 7 })).nonce, 7);
    assert.deepEqual((await bystander.drainUntilPrivateReply()).map((e) => e.event), ["pong"]);

    // Exactly 64 levels is accepted and reaches everyone.
    const deepest = await attacker.request(
      `{"cmd":"update_block_meta","block_id":"${block}","meta_patch":${nested(63)}}`,
    );
    assert.equal(deepest.event, "block_meta_updated");

    for (const args of [["snapshot"], ["snapshot", "--json"], ["events", "--since", "0"]]) {
      const r = await runSrv([...args, "--socket", srv.socket]);
      assert.equal(r.code, ExitCode.ok, `srv ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(block));
    }
  });
});

Deno.test("size caps: one over each limit is a broadcast error naming the flag, state unchanged, srv serving", async () => {
  const flags = ["--memory", "--max-workspaces", "2", "--max-tabs", "2", "--max-blocks", "2"];
  await withSrv(async (srv, connect) => {
    const a = await connect();
    const b = await connect();
    await a.register(100);
    await b.take(3);
    const { ws, tab } = await workspaceWithTab(a);
    await b.take(3);
    const before = tree(await a.request({ cmd: "get_srv_snapshot" }));
    await b.next();
    /** Sends a command that must be refused; both clients see the same error. */
    const refused = async (command: Json, message: string) => {
      const error = await a.request(command);
      assert.equal(error.event, "error");
      assert.equal(error.code, "invalid_command");
      assert.equal(error.message, message);
      assert.ok(error.version > 0, "a broadcast error takes a version");
      assert.deepEqual(await b.next(), error);
    };
    // The defaults of name and meta (1 KiB, 64 KiB), at the limit and one over.
    assert.equal(
      (await a.request({ cmd: "rename_tab", tab_id: tab, name: "n".repeat(1024) })).event,
      "tab_renamed",
    );
    await b.next();
    await refused(
      { cmd: "create_workspace", name: "é".repeat(512) + "x" },
      "CreateWorkspace: name is 1025 bytes, over the limit of 1024 (--max-name-bytes)",
    );
    // {"k":"…"} is 8 bytes around the string.
    const block = await a.request({
      cmd: "create_block",
      tab_id: tab,
      meta: { k: "x".repeat(65528) },
    });
    assert.equal(block.event, "block_created");
    await b.next();
    await refused(
      { cmd: "create_block", tab_id: tab, meta: { k: "x".repeat(65529) } },
      "CreateBlock: meta is 65537 bytes, over the limit of 65536 (--max-meta-bytes)",
    );
    await refused(
      { cmd: "update_block_meta", block_id: block.block_id, meta_patch: { z: 1 } },
      "UpdateBlockMeta: meta would be 65542 bytes, over the limit of 65536 (--max-meta-bytes)",
    );
    // Counts, lowered by their flags.
    await a.request({ cmd: "create_workspace", name: "second" });
    await b.next();
    await refused(
      { cmd: "create_workspace", name: "third" },
      "CreateWorkspace: srv holds 2 workspaces, the limit (--max-workspaces)",
    );
    await a.request({ cmd: "create_tab", workspace_id: ws, name: "t2" });
    await b.next();
    await refused(
      { cmd: "create_tab", workspace_id: ws, name: "t3" },
      "CreateTab: srv holds 2 tabs, the limit (--max-tabs)",
    );
    await a.request({ cmd: "create_block", tab_id: tab });
    await b.next();
    await refused(
      { cmd: "create_block", tab_id: tab },
      "CreateBlock: srv holds 2 blocks, the limit (--max-blocks)",
    );
    // srv still serves, and the refusals changed nothing.
    const after = await a.request({ cmd: "get_srv_snapshot" });
    assert.equal(after.workspaces.length, 2);
    assert.equal(after.blocks.length, 2);
    assert.equal(after.tabs.find((t: Json) => t[0] === tab)[2], "n".repeat(1024));
    assert.deepEqual(after.meta.blocks[block.block_id], { k: "x".repeat(65528) });
    assert.notDeepEqual(tree(after), before);
    const r = await runSrv(["ping", "--socket", srv.socket]);
    assert.equal(r.code, ExitCode.ok);
  }, { flags });
});

Deno.test("a bad limit flag is a usage error", async () => {
  const r = await runSrv(["serve", "--memory", "--max-blocks", "0", "--socket", "/nonexistent/s"]);
  assert.equal(r.code, ExitCode.usage);
  assert.match(r.stderr, /--max-blocks must be a positive integer, got "0"/);
});

Deno.test("register/goodbye cycles with distinct pids: srv remembers at most 1,024 exited pids", {
  ignore: unixOnly("listens on a Unix socket in-process"),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-cycles-" });
  const socket = testEndpoint(dir);
  const server = new Server({ identity: { pid: 4242, version: "test", instanceId: "cycles" } });
  const serving = server.serve(listenUnix(socket));
  const stayer = await TestClient.connect(socket);
  try {
    await stayer.register(1);
    const cycles = 1500;
    await registerCycles(socket, { cycles, firstPid: 1000, concurrency: 16 });
    // Every cycle's process_exited has reached the stayer: the server is done with them.
    const seen = await stayer.drainUntilPrivateReply();
    assert.equal(seen.filter((e) => e.event === "process_exited").length, cycles);
    const records = [...server.state.processes.values()];
    assert.equal(records.filter((r) => r.status === "exited").length, MAX_EXITED_PROCESSES);
    assert.equal(records.filter((r) => r.status === "running").length, 1);
    // The newest exited pid is remembered, the oldest forgotten.
    assert.equal(server.state.processes.get(1000 + cycles - 1)?.status, "exited");
    assert.equal(server.state.processes.has(1000), false);
  } finally {
    await stayer.dispose();
    await server.shutdown();
    await serving;
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Property: random JSON through a real server with a store.

const ODD_KEYS = [
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "",
  "a",
  "b",
  "ключ",
  "😀",
  "\\ud800",
  "\\u0000",
  'q\\"',
];
const NUMBERS = [
  "0",
  "-0",
  "-0.0",
  "1",
  "-1",
  "9007199254740993",
  "12345678901234567890",
  "18446744073709551615",
  "-98765432109876543210",
  "1e308",
  "-1.7976931348623157e308",
  "5e-324",
  "1e-400",
  "-1e-400",
  "0.1",
  "3.141592653589793238462643383279",
  "1E+2",
];
const STRINGS = [
  '""',
  '"plain"',
  '"\\ud800"',
  '"\\udc00x\\ud83d"',
  '"😀 日本語 é"',
  '"\\u0000\\n\\t\\"\\\\"',
  '"[{not json}]"',
];

/** JSON text of a random value at most `depth` levels deep. */
function randomJson(rnd: () => number, depth: number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)];
  const r = rnd();
  if (depth <= 0 || r < 0.45) {
    const kind = rnd();
    if (kind < 0.1) return pick(["null", "true", "false"]);
    if (kind < 0.6) return pick(NUMBERS);
    return pick(STRINGS);
  }
  if (r < 0.5) {
    // A deep chain, down to the limit.
    const levels = Math.min(depth, 1 + Math.floor(rnd() * 62));
    return '{"d":'.repeat(levels - 1) + `[${pick(NUMBERS)}]` + "}".repeat(levels - 1);
  }
  // Fewer than one container child on average, so values stay small.
  const n = Math.floor(rnd() * 4);
  const items = Array.from({ length: n }, () => randomJson(rnd, depth - 1));
  if (r < 0.7) return `[${items.join(",")}]`;
  return `{${items.map((v) => `"${pick(ODD_KEYS)}":${v}`).join(",")}}`;
}

/** A random merge patch: an object whose values may be null (delete). */
function randomPatch(rnd: () => number, depth: number): string {
  const n = 1 + Math.floor(rnd() * 4);
  const fields = Array.from({ length: n }, () => {
    const key = ODD_KEYS[Math.floor(rnd() * ODD_KEYS.length)];
    const value = rnd() < 0.25
      ? "null"
      : rnd() < 0.3
      ? randomPatch(rnd, depth - 1)
      : randomJson(rnd, depth - 1);
    return `"${key}":${depth > 1 ? value : "1"}`;
  });
  return `{${fields.join(",")}}`;
}

function propertySeed(): number {
  const fixed = Deno.env.get("SRV_PROPERTY_SEED");
  return fixed ? Number(fixed) : Date.now() % 1_000_000;
}

Deno.test("random JSON meta: live snapshot == snapshot after SIGKILL and after SIGTERM restarts == fold of the log", async () => {
  const seed = propertySeed();
  const rnd = prng(seed);
  const say = `seed ${seed} (replay with SRV_PROPERTY_SEED=${seed})`;
  await withDataDir(async (dir, data) => {
    const flags = ["--data-dir", data];
    let srv = await startSrv({ dir, flags });
    let c = await TestClient.connect(srv.socket);
    try {
      await c.register(100);
      const { ws, tab } = await workspaceWithTab(c);
      const tabs = [tab];
      const blocks: string[] = [];
      let accepted = 0;
      for (let step = 0; step < 150; step++) {
        const r = rnd();
        let line: string;
        if (r < 0.3 || blocks.length === 0) {
          line = `{"cmd":"create_block","tab_id":"${
            tabs[Math.floor(rnd() * tabs.length)]
          }","meta":${randomJson(rnd, 63)}}`;
        } else if (r < 0.75) {
          const block = blocks[Math.floor(rnd() * blocks.length)];
          line = `{"cmd":"update_block_meta","block_id":"${block}","meta_patch":${
            randomPatch(rnd, 63)
          }}`;
        } else if (r < 0.85) {
          line = `{"cmd":"update_workspace_meta","workspace_id":"${ws}","meta_patch":${
            randomPatch(rnd, 63)
          }}`;
        } else if (r < 0.95) {
          line = `{"cmd":"update_tab_meta","tab_id":"${tab}","meta_patch":${randomPatch(rnd, 63)}}`;
        } else {
          line = `{"cmd":"create_tab","workspace_id":"${ws}","name":"t${step}"}`;
        }
        const reply = await c.request(line).catch((e) => {
          throw new Error(`${say}: ${e.message} after ${line.slice(0, 200)}…\n${srv.stderr()}`);
        });
        assert.notEqual(
          reply.version,
          0,
          `${say}: private reply to ${line}: ${JSON.stringify(reply)}`,
        );
        if (reply.event === "error") continue;
        accepted++;
        if (reply.event === "block_created") blocks.push(reply.block_id);
        if (reply.event === "tab_created") tabs.push(reply.tab_id);
      }
      assert.ok(accepted > 100, `${say}: only ${accepted} commands accepted`);
      const live = tree(await c.request({ cmd: "get_srv_snapshot" }));
      const logged = (await c.request({ cmd: "get_events", since: 0 })).events as ReducerEvent[];
      const folded = logged.reduce<State>((s, e) => evolve(s, e), initialState());
      const fold = JSON.parse(JSON.stringify(snapshotOf(folded)));
      assert.deepEqual(tree(fold), live, `${say}: the fold of the log differs from the live state`);

      for (const signal of ["SIGKILL", "SIGTERM"] as const) {
        await c.dispose();
        await srv.stop(signal);
        srv = await startSrv({ dir, flags });
        c = await TestClient.connect(srv.socket);
        await c.register(100);
        const after = tree(await c.request({ cmd: "get_srv_snapshot" }));
        assert.deepEqual(after, live, `${say}: the snapshot after a ${signal} restart differs`);
      }
    } finally {
      await c.dispose();
      assert.equal(await srv.stop("SIGTERM"), 0, srv.stderr());
    }
  });
});
