// The client subcommands of the srv binary, run as a user runs them: a real
// process against a real server. Output (human and --json) and exit codes.
import assert from "node:assert/strict";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { parseJson } from "../../srv/core/codec.ts";
import { type Json, runSrv, srvCommand, testEndpoint, unixOnly, withSrv } from "../_harness.ts";

const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

function jsonLines(stdout: string): Json[] {
  assert.ok(stdout.endsWith("\n") || stdout === "", "output ends with a newline");
  return stdout.split("\n").filter((l) => l !== "").map((l) => parseJson(l));
}

Deno.test("srv ping, info, snapshot, send and every domain verb: output and exit codes", async (t) => {
  await withSrv(async (srv, connect) => {
    const observer = await connect();
    await observer.register(1);
    const srvRun = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    /** Runs a --json domain verb that must succeed; returns its events. */
    const verb = async (...args: string[]): Promise<Json[]> => {
      const r = await srvRun(...args, "--json");
      assert.equal(r.code, ExitCode.ok, `srv ${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr, "");
      return jsonLines(r.stdout);
    };

    await t.step("ping: a pong, as an observer that leaves no trace (protocol 2)", async () => {
      const r = await srvRun("ping");
      assert.equal(r.code, ExitCode.ok);
      assert.match(
        r.stdout,
        new RegExp(`^pong nonce=\\d+ v0 from ${srv.instance} in [0-9.]+ ms\\n$`),
      );
      // No process_spawned, registered or process_exited: nothing at all.
      assert.deepEqual(await observer.drainUntilPrivateReply(), []);

      const big = await srvRun("ping", "--json", "--nonce", "18446744073709551615");
      assert.equal(big.code, ExitCode.ok);
      assert.match(big.stdout, /^\{"event":"pong","nonce":18446744073709551615,"version":0\}\n$/);
    });

    await t.step("info", async () => {
      const r = await srvRun("info");
      assert.equal(r.code, ExitCode.ok);
      assert.match(r.stdout, new RegExp(`^server +srv 0\\.1\\.0 \\(pid ${srv.pid}\\)$`, "m"));
      assert.match(r.stdout, new RegExp(`^socket +${srv.socket}$`, "m"));
      assert.match(r.stdout, new RegExp(`^instance +${srv.instance}$`, "m"));
      assert.match(r.stdout, /^store +none \(memory only\)$/m);
      const [info] = jsonLines((await srvRun("info", "--json")).stdout);
      assert.equal(info.event, "server_info");
      assert.equal(info.pid, srv.pid);
      assert.equal(info.store, null);
    });

    let ws = "";
    let ws2 = "";
    let tabA = "";
    let tabB = "";
    let block = "";
    await t.step("workspace, tab and block verbs print the events they caused", async () => {
      const human = await srvRun("workspace", "create", "my ws");
      assert.equal(human.code, ExitCode.ok);
      const line = new RegExp(`^v(\\d+) workspace_created workspace_id=(${UUID}) name="my ws"\\n$`);
      assert.match(human.stdout, line);
      ws = human.stdout.match(line)![2];

      [{ workspace_id: ws2 }] = await verb("workspace", "create", "two");
      const created = await verb("tab", "create", ws, "a");
      assert.deepEqual(created.map((e) => e.event), ["tab_created", "active_tab_changed"]);
      tabA = created[0].tab_id;
      [{ tab_id: tabB }] = await verb("tab", "create", ws, "b");
      const names = async (...args: string[]) => (await verb(...args)).map((e) => e.event);

      assert.deepEqual(await names("workspace", "rename", ws, "main"), ["workspace_renamed"]);
      assert.deepEqual(await names("workspace", "meta", ws, '{"color":"red"}'), [
        "workspace_meta_updated",
      ]);
      assert.deepEqual(await names("tab", "rename", tabA, "shell"), ["tab_renamed"]);
      assert.deepEqual(await names("tab", "activate", ws, tabB), ["active_tab_changed"]);
      assert.deepEqual(await names("tab", "reorder", ws, tabB, "0"), ["tab_reordered"]);
      assert.deepEqual(await names("tab", "order", ws, tabA, tabB), ["tabs_reordered_bulk"]);
      assert.deepEqual(await names("tab", "meta", tabA, '{"pinned":true}'), ["tab_meta_updated"]);
      const [made] = await verb("block", "create", tabA, "--meta", '{"kind":"term"}');
      assert.equal(made.event, "block_created");
      assert.deepEqual(made.meta, { kind: "term" });
      block = made.block_id;
      const [plain] = await verb("block", "create", tabA);
      assert.equal(plain.meta, null);
      assert.deepEqual(await names("block", "move", plain.block_id, tabA, tabB, "0"), [
        "block_moved",
      ]);
      assert.deepEqual(await names("block", "meta", block, '{"title":"build"}'), [
        "block_meta_updated",
      ]);
      assert.deepEqual(await names("block", "delete", tabB, plain.block_id), ["block_deleted"]);
      assert.deepEqual(await names("tab", "move", tabB, ws, ws2, "0"), ["tab_moved"]);
      // A delete of an unknown full id changes nothing and is not an error.
      assert.deepEqual(await names("block", "delete", tabA, crypto.randomUUID()), []);
    });

    await t.step(
      "snapshot: the tree for people, named fields with --json, the wire's with --wire",
      async () => {
        const r = await srvRun("snapshot");
        assert.equal(r.code, ExitCode.ok);
        assert.equal(
          r.stdout.split("\n").slice(1).join("\n"),
          [
            `workspace main (${ws}) {"color":"red"}`,
            `  * tab shell (${tabA}) {"pinned":true}`,
            `      block ${block} {"kind":"term","title":"build"}`,
            `workspace two (${ws2})`,
            `  * tab b (${tabB})`,
            "",
          ].join("\n"),
        );
        assert.match(r.stdout, /^snapshot at v\d+, lifecycle running\n/);
        const [snap] = jsonLines((await srvRun("snapshot", "--wire")).stdout);
        assert.equal(snap.event, "srv_snapshot");
        assert.deepEqual(snap.tab_order[ws], [tabA]);
        const [tree] = jsonLines((await srvRun("snapshot", "--json")).stdout);
        assert.equal(tree.lifecycle, "running");
        assert.ok(tree.version >= snap.version);
        assert.deepEqual(tree.workspaces.find((w: Json) => w.name === "main"), {
          id: ws,
          name: "main",
          active_tab_id: tabA,
          meta: { color: "red" },
          tabs: [{
            id: tabA,
            name: "shell",
            meta: { pinned: true },
            blocks: [{ id: block, meta: { kind: "term", title: "build" } }],
          }],
        });
      },
    );

    await t.step(
      "meta is JSON with doubles, as srv reads it; an empty tab list is a list",
      async () => {
        const [created] = await verb(
          "block",
          "create",
          tabA,
          "--meta",
          '{"n":12345678901234567890}',
        );
        assert.equal(created.event, "block_created");
        assert.deepEqual(created.meta, { n: 12345678901234567000 });
        const [patched] = await verb(
          "block",
          "meta",
          created.block_id,
          '{"m":18446744073709551615}',
        );
        assert.deepEqual(patched.meta_patch, { m: 18446744073709552000 });
        const [empty] = await verb("workspace", "create", "no tabs yet");
        // Its (empty) order is already the order: accepted, and nothing changes.
        assert.deepEqual(await verb("tab", "order", empty.workspace_id), []);
        await verb("workspace", "delete", empty.workspace_id);
        await verb("block", "delete", tabA, created.block_id);
      },
    );

    await t.step("delete verbs, with --force where a last tab needs it", async () => {
      const refused = await srvRun("tab", "delete", ws, tabA);
      assert.equal(refused.code, ExitCode.serverError);
      assert.match(
        refused.stderr,
        /^srv: invalid_command: DeleteTab: refusing to delete the last tab/,
      );
      const deleted = await verb("tab", "delete", ws, tabA, "--force");
      assert.deepEqual(deleted.map((e) => e.event), ["tab_deleted", "active_tab_changed"]);
      assert.deepEqual(deleted[0].block_ids, [block]);
      assert.deepEqual((await verb("workspace", "delete", ws2)).map((e) => e.event), [
        "workspace_deleted",
      ]);
    });

    await t.step(
      "a refused command: exit 7, the server's code and message, nothing on stdout",
      async () => {
        // A full id is sent as it is: the server is the judge.
        const unknown = crypto.randomUUID();
        const r = await srvRun("tab", "create", unknown, "x");
        assert.equal(r.code, ExitCode.serverError);
        assert.equal(r.stdout, "");
        assert.equal(
          r.stderr,
          `srv: invalid_command: CreateTab: workspace not found: ${unknown}\n`,
        );
      },
    );

    await t.step("events --since: the logged events after it", async () => {
      const [info] = jsonLines((await srvRun("info", "--json")).stdout);
      await srvRun("workspace", "create", "late");
      const r = await srvRun("events", "--since", String(info.event_version), "--json");
      assert.equal(r.code, ExitCode.ok);
      const events = jsonLines(r.stdout);
      assert.ok(events.every((e) => e.version > info.event_version));
      assert.ok(events.some((e) => e.event === "workspace_created" && e.name === "late"));
      const human = await srvRun("events", "--since", String(info.event_version));
      assert.match(
        human.stdout,
        new RegExp(`^v\\d+ workspace_created workspace_id=${UUID} name=late$`, "m"),
      );
    });

    await t.step("send: any command, every event it caused, exit 7 on an error", async () => {
      const ok = await srvRun("send", '{"cmd":"ping","nonce":5}');
      assert.equal(ok.code, ExitCode.ok);
      assert.match(ok.stdout, /^v\d+ pong nonce=5\n$/);
      const unknown = await srvRun("send", '{"cmd":"fly"}');
      assert.equal(unknown.code, ExitCode.serverError);
      assert.equal(
        unknown.stdout,
        'v0 error code=invalid_command message="parse failed: unknown command `fly`" fatal=false\n',
      );
      const refused = await srvRun(
        "send",
        '{"cmd":"rename_tab","tab_id":"x","name":"y"}',
        "--json",
      );
      assert.equal(refused.code, ExitCode.serverError);
      const [error] = jsonLines(refused.stdout);
      assert.equal(error.message, "RenameTab: tab not found: x");
      assert.ok(error.version > 0);
      const bad = await srvRun("send", "{not json");
      assert.equal(bad.code, ExitCode.usage);
      assert.match(bad.stderr, /^srv send: the command is not JSON/);
    });

    await t.step("SRV_SOCKET stands in for --socket", async () => {
      const r = await runSrv(["ping", "--json"], { env: { SRV_SOCKET: srv.socket } });
      assert.equal(r.code, ExitCode.ok, r.stderr);
      assert.equal(jsonLines(r.stdout)[0].event, "pong");
    });

    await t.step("<noun> <verb> --help shows that verb and its example", async () => {
      const r = await srvRun("tab", "move", "--help");
      assert.equal(r.code, ExitCode.ok, r.stderr);
      assert.match(r.stdout, /^Usage: srv tab move TAB SRC_WS DST_WS INDEX \[flags\]\n/);
      assert.match(r.stdout, /Example:\n {2}srv tab move /);
    });

    await t.step("bad command lines exit 2 and say why", async () => {
      for (
        const [args, why] of [
          [["tab", "frob"], /^srv tab: unknown verb "frob"\nsee: srv help tab\n$/],
          [["workspace", "create"], /^srv workspace create: needs NAME\n/],
          [["ping", "--follow"], /^srv ping: unknown flag --follow\nsee: srv help ping\n$/],
          [["tab", "reorder", "w", "t", "x"], /INDEX must be an integer/],
          [["block", "meta", "b", "[1]"], /PATCH must be a JSON object/],
          // Past the rule's range: refused by the server's own decoder, named as the CLI spells it.
          // (the rule's words, not the validator's).
          [
            ["tab", "reorder", "w", "t", "4294967296"],
            /^srv tab reorder: INDEX must be an integer from 0 to 4294967295\n/,
          ],
          [
            ["ping", "--nonce", "18446744073709551616"],
            /^srv ping: --nonce must be an integer from 0 to 2\^64 - 1\n/,
          ],
          [["tab", "order"], /srv tab order: needs WS TAB\.\.\./],
          [["block", "meta", "b", '{"n":1e400}'], /PATCH is not JSON: number out of range/],
          [["events", "--since", "-1"], /./],
        ] as const
      ) {
        const r = await srvRun(...args);
        assert.equal(r.code, ExitCode.usage, args.join(" "));
        assert.match(r.stderr, why);
      }
    });
  });
});

Deno.test("no server at the socket: exit 6 with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-cli-" });
  try {
    const missing = testEndpoint(dir);
    const r = await runSrv(["ping", "--socket", missing]);
    assert.equal(r.code, ExitCode.unreachable);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^srv: no srv at .+ \(no (socket|such pipe) there\)\n$/);
    assert.ok(r.stderr.includes(missing));
    const info = await runSrv(["info", "--json", "--socket", missing]);
    assert.equal(info.code, ExitCode.unreachable);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("srv events on a truncated history: what is left, a warning, exit 8", async () => {
  await withSrv(async (srv, connect) => {
    const pusher = await connect();
    await pusher.register(1);
    for (let batch = 0; batch < 9; batch++) {
      const lines = Array.from({ length: 500 }, (_, i) => `{"cmd":"ping","nonce":${i}}`);
      await pusher.send(lines.join("\n"));
      for (let i = 0; i < 500; i++) await pusher.next();
    }
    const r = await runSrv(["events", "--json", "--socket", srv.socket]);
    assert.equal(r.code, ExitCode.historyTruncated);
    assert.equal(jsonLines(r.stdout).length, 4096);
    assert.match(r.stderr, /no longer retained \(history truncated\)/);
  });
});

Deno.test("srv events --follow: replay, then live events, until SIGTERM (exit 0)", {
  ignore: unixOnly("SIGTERM: Windows has no SIGTERM to send"),
}, async () => {
  await withSrv(async (srv, connect) => {
    const writer = await connect();
    await writer.register(1);
    const before = await writer.request({ cmd: "create_workspace", name: "before" });
    const { cmd, args } = srvCommand([
      "events",
      "--follow",
      "--since",
      "0",
      "--json",
      "--socket",
      srv.socket,
    ]);
    const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const nextEvent = async (): Promise<Json> => {
      while (!text.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) throw new Error("srv events --follow ended early");
        text += value;
      }
      const at = text.indexOf("\n");
      const line = text.slice(0, at);
      text = text.slice(at + 1);
      return parseJson(line);
    };
    try {
      const seen: Json[] = [];
      while (seen.at(-1)?.version !== before.version) seen.push(await nextEvent());
      assert.deepEqual(seen.map((e) => e.version), seen.map((_, i) => i + 1), "from v1 on");
      await writer.drainUntilPrivateReply(); // the follower's own register
      const after = await writer.request({ cmd: "create_workspace", name: "after" });
      let event: Json;
      do event = await nextEvent(); while (event.version < after.version);
      assert.equal(event.name, "after");
      child.kill("SIGTERM");
      const status = await child.status;
      assert.equal(status.code, ExitCode.ok);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await lines.cancel();
      await child.stderr.cancel();
      await child.status;
    }
  });
});
