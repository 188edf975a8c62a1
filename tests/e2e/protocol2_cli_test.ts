// Protocol 2 from the command line, over real sockets and real processes:
// the read-only verbs leave a fresh server untouched, and `srv export` on
// one server then `srv apply` on an empty one reproduces the tree exactly,
// across a restart of the store too. `--if-unchanged-since` and NDJSON.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { parseJson } from "../../srv/core/codec.ts";
import { type Json, runSrv, startSrv, type TestClient, withSrv } from "../_harness.ts";
import { treeOf } from "../_fixtures.ts";

async function snapshotAt(socket: string): Promise<Json> {
  const r = await runSrv(["snapshot", "--json", "--socket", socket]);
  assert.equal(r.code, ExitCode.ok, r.stderr);
  return parseJson(r.stdout);
}

/** A tree with everything a layout must keep: order, active tabs, metas, moves. */
async function build(c: TestClient): Promise<void> {
  await c.register(1);
  const ask = async (command: Json): Promise<Json> => {
    await c.send(command);
    return (await c.drainUntilPrivateReply()).filter((e: Json) => e.version > 0);
  };
  const [w1] = await ask({ cmd: "create_workspace", name: "dev" });
  const [w2] = await ask({ cmd: "create_workspace", name: "ops \u00e9\u{1F600}" });
  const ws = w1.workspace_id;
  const tabs: string[] = [];
  for (const name of ["editor", "shell", "logs"]) {
    tabs.push((await ask({ cmd: "create_tab", workspace_id: ws, name }))[0].tab_id);
  }
  const other = (await ask({ cmd: "create_tab", workspace_id: w2.workspace_id, name: "x" }))[0]
    .tab_id;
  await ask({ cmd: "reorder_tab", workspace_id: ws, tab_id: tabs[2], new_index: 0 });
  await ask({ cmd: "set_active_tab", workspace_id: ws, tab_id: tabs[1] });
  await ask({
    cmd: "update_workspace_meta",
    workspace_id: ws,
    meta_patch: { color: "blue", n: 1.5 },
  });
  await ask({ cmd: "update_tab_meta", tab_id: tabs[1], meta_patch: { pinned: true } });
  const blocks: string[] = [];
  for (const meta of [{ kind: "term" }, null, [1, "two", { three: null }], "text", 0]) {
    blocks.push((await ask({ cmd: "create_block", tab_id: tabs[1], meta }))[0].block_id);
  }
  await ask({
    cmd: "move_block",
    block_id: blocks[4],
    src_tab_id: tabs[1],
    dst_tab_id: tabs[1],
    dst_index: 0,
  });
  await ask({
    cmd: "move_block",
    block_id: blocks[2],
    src_tab_id: tabs[1],
    dst_tab_id: other,
    dst_index: 0,
  });
  await ask({ cmd: "update_block_meta", block_id: blocks[0], meta_patch: { title: "build" } });
  await ask({ cmd: "create_workspace", name: "empty" });
}

Deno.test("read-only verbs leave a fresh server's history empty and its lifecycle starting", async () => {
  await withSrv(async (srv) => {
    for (let i = 0; i < 3; i++) {
      for (const verb of [["ping"], ["info"], ["snapshot"], ["events"], ["export"]]) {
        const r = await runSrv([...verb, "--socket", srv.socket]);
        assert.equal(r.code, ExitCode.ok, `${verb}: ${r.stderr}`);
      }
    }
    const events = await runSrv(["events", "--json", "--socket", srv.socket]);
    assert.equal(events.stdout, "");
    const snapshot = await snapshotAt(srv.socket);
    assert.equal(snapshot.lifecycle, "starting");
    assert.equal(snapshot.version, 0);
    const info = parseJson(
      (await runSrv(["info", "--json", "--socket", srv.socket])).stdout,
    ) as Json;
    assert.equal(info.event_version, 0);
    assert.deepEqual(info.log, { oldest: null, newest: null, retained: 0 });
  });
});

Deno.test("srv export, then srv apply on an empty server, reproduces the tree exactly (and after a restart)", async () => {
  await withSrv(async (source, connect) => {
    await build(await connect());
    const exported = await runSrv(["export", "--socket", source.socket]);
    assert.equal(exported.code, ExitCode.ok, exported.stderr);
    const file = `${source.dir}/layout.json`;
    await Deno.writeTextFile(file, exported.stdout);

    const dir = await Deno.makeTempDir({ prefix: "srv-p2-" });
    try {
      let target = await startSrv({ dir, flags: ["--data-dir", `${dir}/data`] });
      try {
        const applied = await runSrv(["apply", file, "--socket", target.socket]);
        assert.equal(applied.code, ExitCode.ok, applied.stderr);
        const range = /^applied \d+ commands as one batch: (\d+) events, v4\.\.v(\d+)\n$/.exec(
          applied.stdout,
        );
        assert.ok(range !== null, applied.stdout);
        const want = treeOf(await snapshotAt(source.socket));
        assert.deepEqual(treeOf(await snapshotAt(target.socket)), want);
        // The export of the copy is the export of the original (ids, order, metas).
        const again = await runSrv(["export", "--json", "--socket", target.socket]);
        assert.deepEqual(
          { ...(JSON.parse(again.stdout)), version: 0 },
          { ...(JSON.parse(exported.stdout)), version: 0 },
        );
        // Applying it twice is refused whole: the ids exist.
        const twice = await runSrv(["apply", file, "--socket", target.socket]);
        assert.equal(twice.code, ExitCode.serverError);
        assert.match(
          twice.stderr,
          /Batch: command 0 \(create_workspace\) failed: CreateWorkspace: workspace already exists: /,
        );
        await target.stop();
        // The batch was committed as one row (one transaction), and only it.
        const db = new DatabaseSync(`${dir}/data/srv.db`, { readOnly: true });
        try {
          const rows = db.prepare(
            "SELECT first_version, last_version, events FROM batches WHERE last_version >= 4",
          ).all();
          assert.deepEqual({ ...rows[0] }, {
            first_version: 4,
            last_version: Number(range[2]),
            events: Number(range[1]),
          });
        } finally {
          db.close();
        }
        // The store kept the batch: a restart serves the same tree.
        target = await startSrv({ dir, flags: ["--data-dir", `${dir}/data`] });
        assert.deepEqual(treeOf(await snapshotAt(target.socket)), want);
      } finally {
        await target.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("srv apply - reads NDJSON commands as one batch; --if-unchanged-since refuses a stale one", async () => {
  await withSrv(async (srv) => {
    const ws = "6f1c0000-0000-4000-8000-000000000001";
    const tab = "9a2e0000-0000-4000-8000-000000000002";
    const lines = [
      JSON.stringify({ cmd: "create_workspace", name: "w", workspace_id: ws }),
      "",
      JSON.stringify({ cmd: "create_tab", workspace_id: ws, name: "t", tab_id: tab }),
    ].join("\n");
    const r = await runSrv(["apply", "-", "--json", "--socket", srv.socket], { stdin: lines });
    assert.equal(r.code, ExitCode.ok, r.stderr);
    const events = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => [e.event, e.version, e.batch_end]), [
      // v1..v3: the CLI's own registration (apply writes, so it registers).
      ["workspace_created", 4, 6],
      ["tab_created", 5, 6],
      ["active_tab_changed", 6, 6],
    ]);
    const rename = JSON.stringify({ cmd: "rename_tab", tab_id: tab, name: "new" });
    const stale = await runSrv(
      ["apply", "-", "--if-unchanged-since", "1", "--socket", srv.socket],
      { stdin: rename },
    );
    assert.equal(stale.code, ExitCode.serverError);
    assert.match(
      stale.stderr,
      new RegExp(`precondition_failed: Batch: tab ${tab} changed at version 5 \\(after 1\\)`),
    );
    const fresh = await runSrv(
      ["apply", "-", "--if-unchanged-since", "6", "--socket", srv.socket],
      { stdin: rename },
    );
    assert.equal(fresh.code, ExitCode.ok, fresh.stderr);
    // A version past u64 is the flag's fault, said as such, and nothing is sent.
    const huge = await runSrv(
      ["apply", "-", "--if-unchanged-since", "18446744073709551616", "--socket", srv.socket],
      { stdin: rename },
    );
    assert.equal(huge.code, ExitCode.usage);
    assert.match(
      huge.stderr,
      /^srv apply: --if-unchanged-since must be an integer from 0 to 2\^64 - 1\n/,
    );
    // A bad file is named, and nothing is sent.
    const bad = await runSrv(["apply", "-", "--socket", srv.socket], {
      stdin: `${rename}\n{"cmd":"ping","nonce":1}\n`,
    });
    assert.equal(bad.code, ExitCode.usage);
    assert.match(bad.stderr, /srv apply: -: line 2: `ping` cannot be in a batch/);
    const layout = await runSrv(["apply", "-", "--socket", srv.socket], {
      stdin: JSON.stringify({
        workspaces: [{ name: "w", tabs: [{ name: "a", blocks: [{ id: "nope" }] }] }],
      }),
    });
    assert.equal(layout.code, ExitCode.usage);
    assert.match(
      layout.stderr,
      /workspaces\[0\]\.tabs\[0\]\.blocks\[0\]\.id: not a lowercase UUID/,
    );
  });
});

Deno.test("srv apply of a hostile file: one line naming the file, exit 2, nothing applied", async () => {
  await withSrv(async (srv, connect) => {
    const id = "6f1c0000-0000-4000-8000-000000000001";
    const files: [string, string, RegExp][] = [
      [
        "deep.json",
        `{"workspaces":[{"name":"w","meta":${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}]}`,
        /JSON nested deeper than srv reads \(64 levels in a command\)/,
      ],
      // Deep enough for a layout, one level too deep in the batch line srv reads.
      [
        "deep_ndjson.json",
        `{"cmd":"create_block","tab_id":"${id}","meta":${"[".repeat(62)}${"]".repeat(62)}}`,
        /not a batch srv would take: JSON nested deeper than 64 levels/,
      ],
      [
        "huge.json",
        JSON.stringify({ workspaces: [{ name: "w", meta: { x: "y".repeat(70_000) } }] }),
        /too big for one batch: line exceeds 65536 bytes$/,
      ],
      ["types.json", JSON.stringify({ workspaces: [{ name: 5 }] }), /workspaces\[0\] needs a name/],
      [
        "many.json",
        JSON.stringify({ workspaces: Array.from({ length: 1001 }, (_, i) => ({ name: `w${i}` })) }),
        /1001 commands, more than one batch holds \(1000\)/,
      ],
      [
        "dup.json",
        JSON.stringify({
          workspaces: [{ name: "a", id }, { name: "b", tabs: [{ name: "t", id }] }],
        }),
        new RegExp(`workspaces\\[1\\]\\.tabs\\[0\\]\\.id: ${id} is used twice`),
      ],
    ];
    for (const [name, text, why] of files) {
      const path = `${srv.dir}/${name}`;
      await Deno.writeTextFile(path, text);
      const r = await runSrv(["apply", path, "--socket", srv.socket]);
      assert.equal(r.code, ExitCode.usage, `${name}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(lines[0].startsWith(`srv apply: ${path}: `), `${name}: ${lines[0]}`);
      assert.match(lines[0], why, name);
    }
    // Input read whole is bounded, and must be UTF-8: /dev/zero never ends.
    const zero = await runSrv(["apply", "/dev/zero", "--socket", srv.socket]);
    assert.equal(zero.code, ExitCode.usage, zero.stderr);
    assert.equal(zero.stderr, "srv apply: /dev/zero: the file is over 67108864 bytes\n");
    await Deno.writeFile(`${srv.dir}/latin1.json`, new Uint8Array([0x7b, 0xe9, 0x7d]));
    const latin1 = await runSrv(["apply", `${srv.dir}/latin1.json`, "--socket", srv.socket]);
    assert.equal(latin1.code, ExitCode.usage, latin1.stderr);
    assert.match(latin1.stderr, /latin1\.json: the file is not valid UTF-8\n$/);
    // An empty layout (what `srv export` writes for an empty tree) is nothing to do.
    const empty = await runSrv(["apply", "-", "--socket", srv.socket], {
      stdin: '{"version":0,"workspaces":[]}',
    });
    assert.equal(empty.code, ExitCode.ok, empty.stderr);
    // Nothing applied; and only the file too big for srv's line got as far as connecting.
    const c = await connect();
    await c.send({ cmd: "register", kind: "tool", pid: 1, version: "o", observe: true });
    await c.next();
    const { events } = await c.request({ cmd: "get_events", since: 0 });
    assert.deepEqual(events.map((e: Json) => e.event), [
      "process_spawned",
      "lifecycle_phase_changed",
      "registered",
      "process_exited",
    ]);
    assert.deepEqual((await c.request({ cmd: "get_srv_snapshot" })).workspaces, []);
  }, { flags: ["--memory", "--max-line-bytes", "65536"] });
});
