// The scripts in examples/, run the way their doc comments say, against a
// real server.
import assert from "node:assert/strict";
import { connect } from "../../srv/client/connect.ts";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { type Json, testEndpoint, unixOnly, withSrv } from "../_harness.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys"];

function example(name: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, `examples/${name}`, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

async function runExample(name: string, args: string[]) {
  const { code, stdout, stderr } = await example(name, args).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

const LAYOUT = {
  workspaces: [
    {
      name: "dev",
      meta: { color: "blue" },
      tabs: [
        { name: "editor", blocks: [{ meta: { kind: "editor" } }] },
        {
          name: "shell",
          active: true,
          meta: { pinned: true },
          blocks: [{ meta: { kind: "term" } }, {}],
        },
      ],
    },
    { name: "empty" },
  ],
};

Deno.test("apply_layout creates the layout's tree and reports every id", async () => {
  await withSrv(async (srv) => {
    const file = `${srv.dir}/layout.json`;
    await Deno.writeTextFile(file, JSON.stringify(LAYOUT));
    const r = await runExample("apply_layout.ts", [file, "--socket", srv.socket, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const made = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(made.map((m: Json) => `${m.kind}:${m.name}`), [
      "workspace:dev",
      "tab:editor",
      "block:",
      "tab:shell",
      "block:",
      "block:",
      "workspace:empty",
    ]);
    const [dev, editor, editorBlock, shell, term, plain, empty] = made;
    assert.equal(editor.parent, dev.id);
    assert.equal(term.parent, shell.id);

    const client = await connect({ socket: srv.socket });
    try {
      await client.register({ kind: "tool" });
      const snap = await client.snapshot();
      assert.deepEqual(snap.workspaces.map(([, name]) => name).sort(), ["dev", "empty"]);
      assert.deepEqual(snap.tab_order[dev.id], [editor.id, shell.id]);
      assert.deepEqual(snap.tab_order[empty.id], []);
      assert.deepEqual(snap.active_tabs, [[dev.id, shell.id]]);
      assert.deepEqual(snap.block_order[shell.id], [term.id, plain.id]);
      assert.deepEqual(snap.block_order[editor.id], [editorBlock.id]);
      assert.deepEqual(snap.meta.workspaces[dev.id], { color: "blue" });
      assert.deepEqual(snap.meta.tabs[shell.id], { pinned: true });
      assert.deepEqual(snap.meta.blocks[term.id], { kind: "term" });
      assert.equal(snap.meta.blocks[plain.id], null);
    } finally {
      await client.close();
    }
  });
});

Deno.test("apply_layout refuses a bad layout (2) and reports a missing server (6)", async () => {
  await withSrv(async (srv) => {
    const file = `${srv.dir}/bad.json`;
    await Deno.writeTextFile(file, JSON.stringify({ workspaces: [{ tabs: [] }] }));
    const bad = await runExample("apply_layout.ts", [file, "--socket", srv.socket]);
    assert.equal(bad.code, ExitCode.usage);
    assert.match(bad.stderr, /workspaces\[0\] needs a name/);

    await Deno.writeTextFile(file, JSON.stringify(LAYOUT));
    const away = await runExample("apply_layout.ts", [
      file,
      "--socket",
      testEndpoint(`${srv.dir}/away`),
    ]);
    assert.equal(away.code, ExitCode.unreachable);
    assert.match(away.stderr, /no srv at/);
  });
});

Deno.test("live_tree prints the tree from a snapshot, then after every change", {
  ignore: unixOnly("it stops on SIGTERM, which Windows cannot send"),
}, async () => {
  await withSrv(async (srv) => {
    const child = example("live_tree.ts", ["--socket", srv.socket]).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let output = "";
    const waitFor = async (pattern: RegExp): Promise<void> => {
      while (!pattern.test(output)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`live_tree ended before printing ${pattern}:\n${output}`);
        output += value;
      }
    };
    const client = await connect({ socket: srv.socket });
    try {
      await waitFor(/== v\d+ snapshot \(requested\)\n\(no workspaces\)\n/);
      await client.register({ kind: "tool" });
      const [ws] = await client.command({ cmd: "create_workspace", name: "main" });
      const [tab] = await client.command({
        cmd: "create_tab",
        workspace_id: ws.workspace_id,
        name: "shell",
      });
      const tabId = (tab as { tab_id: string }).tab_id;
      const [block] = await client.command({
        cmd: "create_block",
        tab_id: tabId,
        meta: { kind: "term" },
      });
      await waitFor(
        new RegExp(
          `== v${block.version} block_created\\n` +
            `workspace main \\(${ws.workspace_id}\\)\\n` +
            `  \\* tab shell \\(${tabId}\\)\\n` +
            `      block ${block.block_id} \\{"kind":"term"\\}\\n`,
        ),
      );
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0, "SIGTERM closes the client and exits 0");
    } finally {
      await client.close();
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await reader.cancel();
      await child.stderr.cancel();
      await child.status;
    }
  });
});
