// What a newcomer found walking the README on a fresh clone: a full disk on
// stdout, broken answers, ambiguous tree output, help that says the wrong
// thing, completions of values, names that match nothing, a server that
// never answers, and the smaller wording. Each runs the real CLI, against a
// real server where one matters.
import assert from "node:assert/strict";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { parseJson } from "../../srv/core/codec.ts";
import { type Json, runSrv, srvCommand, unixOnly, withSrv } from "../_harness.ts";

function jsonLines(stdout: string): Json[] {
  return stdout.split("\n").filter((l) => l !== "").map((l) => parseJson(l));
}

/** A shell word for `sh -c`. */
function shq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The srv command line as one shell string. */
function srvShell(args: string[]): string {
  const { cmd, args: full } = srvCommand(args);
  return [cmd, ...full].map(shq).join(" ");
}

async function sh(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder();
  return { code: r.code, stdout: text.decode(r.stdout), stderr: text.decode(r.stderr) };
}

Deno.test("stdout that cannot be written (a full disk): one line, exit 1, no stack", {
  ignore: unixOnly("/dev/full is a Linux device") || Deno.build.os !== "linux",
}, async () => {
  await withSrv(async (srv) => {
    for (const args of [["snapshot", "-s", srv.socket], ["help"], ["completions", "bash"]]) {
      const r = await sh(`${srvShell(args)} > /dev/full`);
      assert.equal(r.code, ExitCode.failure, `srv ${args.join(" ")}: ${r.stderr}`);
      assert.equal(
        r.stderr,
        "srv: cannot write output: No space left on device (os error 28)\n",
        `srv ${args.join(" ")}`,
      );
    }
  });
});

/**
 * A Unix socket that is not srv: each connection gets `answer` (after its
 * first bytes), or is closed at once (`"close"`), or is held in silence.
 */
async function withFakeSocket(
  answer: Uint8Array | "close" | "silent",
  fn: (socket: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const socket = `${dir}/fake.sock`;
  const listener = Deno.listen({ transport: "unix", path: socket });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      held.push(conn);
      if (answer === "close") conn.close();
      else if (answer !== "silent") {
        void (async () => {
          try {
            await conn.read(new Uint8Array(65536));
            await conn.write(answer);
          } catch { /* the client went */ }
        })();
      }
    }
  })();
  try {
    await fn(socket);
  } finally {
    listener.close();
    await serving.catch(() => {});
    for (const conn of held) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
    await Deno.remove(dir, { recursive: true });
  }
}

// deno-lint-ignore no-control-regex -- finding controls is the point
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

Deno.test("a broken answer or a socket that just closes: exactly one escaped line, exit 6", {
  ignore: unixOnly("the fake server is a Unix socket"),
}, async () => {
  const garbage = new TextEncoder().encode("\u001b]0;pwned\u0007 not json\n");
  const cases: [Uint8Array | "close", RegExp][] = [
    [garbage, /^srv: not an srv answer: .*\\x1b\]0;pwned\\x07/],
    // Whether the close is seen before or while registering, and as an EOF or
    // a reset, is the scheduler's.
    ["close", /^srv: (client closed: )?connection to srv lost: \S.*$/m],
  ];
  for (const [answer, expected] of cases) {
    await withFakeSocket(answer, async (socket) => {
      for (const args of [["ping"], ["snapshot"], ["events", "--follow"]]) {
        const r = await runSrv([...args, "-s", socket]);
        const what = `srv ${args.join(" ")} (${answer === "close" ? "closed" : "garbage"})`;
        assert.equal(r.code, ExitCode.unreachable, `${what}: ${r.stderr}`);
        assert.equal(r.stderr.split("\n").length, 2, `${what}: one line: ${r.stderr}`);
        assert.match(r.stderr, expected, `${what}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr.trimEnd(), CONTROL, `${what}: nothing unescaped`);
      }
    });
  }
});

Deno.test("the store's start-up line has no empty quoted field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-test-" });
  try {
    await withSrv((srv) => {
      const line = srv.stderr().split("\n").find((l) => l.includes(" events on disk, "));
      assert.ok(line !== undefined, srv.stderr());
      assert.match(line, /tables at v\d+, replayed \d+, next version v1 /);
      assert.doesNotMatch(line, /""/);
      return Promise.resolve();
    }, { dir, flags: ["--data-dir", `${dir}/data`, "--log-format", "pretty"] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a newline and a backslash-n differ in human output; --json keeps both raw", async () => {
  await withSrv(async (srv) => {
    const run = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    const newline = await run("workspace", "create", "x\ny", "-q");
    const backslash = await run("workspace", "create", "x\\ny", "-q");
    assert.equal(newline.code, ExitCode.ok, newline.stderr);
    assert.equal(backslash.code, ExitCode.ok, backslash.stderr);
    const tree = (await run("snapshot")).stdout;
    assert.ok(tree.includes(`workspace x\\ny (${newline.stdout.trim()})`), tree);
    assert.ok(tree.includes(`workspace x\\\\ny (${backslash.stdout.trim()})`), tree);
    const events = (await run("events")).stdout;
    assert.ok(events.includes(String.raw`name="x\ny"`), events);
    assert.ok(events.includes(String.raw`name="x\\ny"`), events);
    const names = jsonLines((await run("snapshot", "--json")).stdout)[0].workspaces.map((
      w: Json,
    ) => w.name).sort();
    assert.deepEqual(names, ["x\ny", "x\\ny"].sort());
  });
});

Deno.test("help of workspace delete says what --force does there: nothing (docs/PROTOCOL.md §6)", async () => {
  const help = await runSrv(["help", "workspace", "delete"]);
  assert.equal(help.code, ExitCode.ok);
  assert.doesNotMatch(help.stdout, /last tab/);
  assert.match(help.stdout, /--force +accepted and ignored: a workspace is always deleted/);
  assert.match((await runSrv(["help", "tab", "delete"])).stdout, /--force +delete even the/);
  // What the help says holds: a workspace with its one tab goes without --force.
  await withSrv(async (srv) => {
    const run = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    assert.equal((await run("workspace", "create", "main")).code, ExitCode.ok);
    assert.equal((await run("tab", "create", "main", "only")).code, ExitCode.ok);
    const deleted = await run("workspace", "delete", "main", "--json");
    assert.equal(deleted.code, ExitCode.ok, deleted.stderr);
    assert.deepEqual(jsonLines(deleted.stdout).map((e) => e.event), ["workspace_deleted"]);
  });
});

Deno.test("help of events says both defaults of --since: 0, and now with --follow", async () => {
  const help = await runSrv(["help", "events"]);
  assert.equal(help.code, ExitCode.ok);
  const since = help.stdout.split("\n      --since N")[1].split(/\n {2}-/)[0].replace(/\s+/g, " ");
  assert.match(since, /default 0; with --follow, default now/);
});

async function hasCommand(name: string): Promise<boolean> {
  return (await sh(`command -v ${name}`)).code === 0;
}

Deno.test("completions offer a flag's values, file names, verbs for help and shells", {
  ignore: unixOnly("bash, zsh and fish completion"),
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/srv-sock-here`, "");
    const scripts: Record<string, string> = {};
    for (const shell of ["bash", "zsh", "fish"]) {
      const r = await runSrv(["completions", shell]);
      assert.equal(r.code, ExitCode.ok);
      scripts[shell] = `${dir}/srv.${shell}`;
      await Deno.writeTextFile(scripts[shell], r.stdout);
    }
    const cases: [string[], (got: string[]) => void][] = [
      [["ping", "-s", `${dir}/srv-so`], (got) => assert.deepEqual(got, [`${dir}/srv-sock-here`])],
      [["serve", "--log-level", ""], (got) =>
        assert.deepEqual(got.sort(), [
          "debug",
          "error",
          "info",
          "warn",
        ])],
      [["serve", "--sync", ""], (got) => assert.deepEqual(got.sort(), ["full", "normal"])],
      [["help", ""], (got) => assert.ok(["ping", "tab", "serve"].every((v) => got.includes(v)))],
      [["help", "tab", "re"], (got) => assert.deepEqual(got.sort(), ["rename", "reorder"])],
      [
        ["completions", ""],
        (got) =>
          assert.deepEqual(got.filter((w) => !w.startsWith("-")).sort(), [
            "bash",
            "fish",
            "zsh",
          ]),
      ],
      [["events", "--since", ""], (got) => assert.deepEqual(got, [])],
    ];
    if (await hasCommand("bash")) {
      for (const [words, check] of cases) {
        const line = ["srv", ...words];
        const r = await sh(
          `bash -c ${
            shq(
              `source ${shq(scripts.bash)}; COMP_WORDS=(${line.map(shq).join(" ")}); ` +
                `COMP_CWORD=${line.length - 1}; _srv; printf '%s\\n' "\${COMPREPLY[@]}"`,
            )
          }`,
        );
        check(r.stdout.split("\n").filter((w) => w !== ""));
      }
      // A file name with a space and a glob character stays one completion.
      await Deno.writeTextFile(`${dir}/my layout [1].json`, "{}");
      const line = ["srv", "apply", `${dir}/my`];
      const odd = await sh(
        `bash -c ${
          shq(
            `source ${shq(scripts.bash)}; COMP_WORDS=(${line.map(shq).join(" ")}); ` +
              `COMP_CWORD=2; _srv; printf '%s\\n' "\${COMPREPLY[@]}"`,
          )
        }`,
      );
      assert.deepEqual(odd.stdout.split("\n").filter((w) => w !== ""), [
        `${dir}/my layout [1].json`,
      ]);
    }
    if (await hasCommand("zsh")) {
      assert.equal((await sh(`zsh -n ${shq(scripts.zsh)}`)).code, 0, "zsh -n");
    }
    if (await hasCommand("fish")) {
      assert.equal((await sh(`fish -n ${shq(scripts.fish)}`)).code, 0, "fish -n");
      for (const [words, check] of cases) {
        const r = await sh(
          `fish -c ${
            shq(`source ${shq(scripts.fish)}; complete -C ${shq(`srv ${words.join(" ")}`)}`)
          }`,
        );
        const got = r.stdout.split("\n").filter((w) => w !== "").map((l) => l.split("\t")[0]);
        check(got);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a name or prefix that matches nothing is said, exit 7, and not sent", async () => {
  await withSrv(async (srv, connect) => {
    const watcher = await connect();
    await watcher.register(1);
    const run = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    const ws = (await run("workspace", "create", "main", "-q")).stdout.trim();
    await watcher.drainUntilPrivateReply();
    const cases: [string[], string][] = [
      [["workspace", "delete", "nope"], 'srv: no workspace matches "nope"\n'],
      [["tab", "create", "nowhere", "x"], 'srv: no workspace matches "nowhere"\n'],
      [["tab", "rename", "ghost", "y"], 'srv: no tab matches "ghost"\n'],
      [["block", "delete", "main", "zzzz"], 'srv: no tab matches "main"\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await run(...args);
      assert.equal(r.code, ExitCode.serverError, `srv ${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr, stderr, `srv ${args.join(" ")}`);
      assert.equal(r.stdout, "");
    }
    // No command reached the server: no error, no change to the tree.
    const seen = (await watcher.drainUntilPrivateReply()).map((e) => e.event);
    assert.deepEqual(seen.filter((e) => e === "error" || /^(workspace|tab|block)_/.test(e)), []);
    // A full id that matches nothing still goes: the server is the judge.
    const full = await run("workspace", "delete", crypto.randomUUID(), "--json");
    assert.equal(full.code, ExitCode.ok, full.stderr);
    assert.equal(full.stdout, "");
    assert.equal((await run("workspace", "delete", ws.slice(0, 8), "-j")).code, ExitCode.ok);
  });
});

Deno.test("a socket that accepts and never answers: one line after --timeout, exit 6", {
  ignore: unixOnly("the fake server is a Unix socket"),
}, async () => {
  await withFakeSocket("silent", async (socket) => {
    for (
      const [args, within] of [
        [["ping", "--timeout", "1"], "1 s"],
        [["snapshot", "--timeout", "300ms"], "300 ms"],
        [["events", "--follow", "--timeout", "300ms"], "300 ms"],
        [["ping"], "10 s"],
      ] as const
    ) {
      const r = await runSrv([...args, "-s", socket]);
      assert.equal(r.code, ExitCode.unreachable, `srv ${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr, `srv: no answer from srv at ${socket} within ${within}\n`);
    }
  });
  const bad = await runSrv(["ping", "--timeout", "soon"]);
  assert.equal(bad.code, ExitCode.usage);
  // Under a millisecond is not "no limit" (0 is): refused, not rounded to 0.
  const tiny = await runSrv(["ping", "--timeout", "0.1ms"]);
  assert.equal(tiny.code, ExitCode.usage, tiny.stderr);
});

Deno.test("a command sent and never answered: it may have been applied, exit 9, not 6", {
  ignore: unixOnly("the fake server is a Unix socket"),
}, async () => {
  // The fake answers the register, then never the command: a retry on exit
  // 6 ("unreachable") could apply a create twice, so this is its own code.
  const registered = new TextEncoder().encode(
    [{
      event: "registered",
      client_id: 1,
      launcher_pid: 1,
      launcher_version: "0.1.0",
      instance_id: "fake",
      protocol: 2,
      version: 1,
    }, {
      // The answer to the marker the client sends with its register.
      event: "server_info",
      pid: 1,
      server_version: "0.1.0",
      instance_id: "fake",
      uptime_ms: 1,
      connections: 1,
      event_version: 1,
      log: { oldest: 1, newest: 1, retained: 1 },
      store: null,
      last_command: { cmd: "register", first: 1, last: 1 },
      version: 0,
    }].map((e) => JSON.stringify(e) + "\n").join(""),
  );
  await withFakeSocket(registered, async (socket) => {
    const made = await runSrv(["workspace", "create", "w", "--timeout", "500ms", "-s", socket]);
    assert.equal(made.code, ExitCode.unknownOutcome, made.stderr);
    assert.equal(
      made.stderr,
      `srv: no answer from srv at ${socket} within 500 ms; the command was sent and may have been applied (see "srv events")\n`,
    );
    // A read that gets no answer changed nothing: still "unreachable".
    const looked = await runSrv(["snapshot", "--timeout", "500ms", "-s", socket]);
    assert.equal(looked.code, ExitCode.unreachable, looked.stderr);
  });
});

Deno.test("small things: an empty --socket, serve's flag wording, info's labels, --json refusals", async () => {
  for (const args of [["ping", "-s", ""], ["serve", "--memory", "--socket", ""]]) {
    const r = await runSrv(args);
    assert.equal(r.code, ExitCode.usage, `srv ${args.join(" ")}: ${r.stderr}`);
    assert.equal(
      r.stderr,
      `srv ${args[0]}: --socket needs a path, got an empty one\nsee: srv help ${args[0]}\n`,
    );
  }
  const bogus = await runSrv(["serve", "--bogus"]);
  assert.equal(bogus.code, ExitCode.usage);
  assert.equal(bogus.stderr, "srv serve: unknown flag --bogus\nsee: srv help serve\n");
  const ping = await runSrv(["ping", "--bogus"]);
  assert.equal(ping.stderr, "srv ping: unknown flag --bogus\nsee: srv help ping\n", "same words");

  await withSrv(async (srv) => {
    const run = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    const info = await run("info");
    assert.match(info.stdout, /^event version +v\d+$/m);
    assert.doesNotMatch(info.stdout, /^version /m);

    const unknown = crypto.randomUUID();
    const refused = await run("tab", "rename", unknown, "x", "--json");
    assert.equal(refused.code, ExitCode.serverError);
    const [event] = jsonLines(refused.stdout);
    assert.equal(event.event, "error", "the error event on stdout, as send --json prints it");
    assert.equal(event.message, `RenameTab: tab not found: ${unknown}`);
    assert.equal(refused.stderr, `srv: invalid_command: RenameTab: tab not found: ${unknown}\n`);
    const sent = await run(
      "send",
      JSON.stringify({ cmd: "rename_tab", tab_id: unknown, name: "x" }),
      "-j",
    );
    assert.deepEqual(jsonLines(sent.stdout).map((e) => e.message), [event.message]);
  });
});

Deno.test("README's upgrading notes name the snapshot --json change and link the changelog", async () => {
  const root = new URL("../../", import.meta.url);
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const upgrading = readme.split("### Upgrading from 0.1.0")[1].split("\n## ")[0];
  assert.match(upgrading, /`srv snapshot --json`/);
  assert.match(upgrading, /`srv snapshot --wire`/);
  assert.match(upgrading, /\[CHANGELOG\.md\]\(CHANGELOG\.md\)/);
  const changelog = await Deno.readTextFile(new URL("CHANGELOG.md", root));
  assert.match(changelog, /^## \[Unreleased\]$/m);
  for (const heading of ["Added", "Changed", "Removed", "Fixed"]) {
    assert.match(changelog, new RegExp(`^### ${heading}$`, "m"));
  }
  // What the notes say holds: --wire is the old shape, --json the tree.
  await withSrv(async (srv) => {
    const [wire] = jsonLines((await runSrv(["snapshot", "--wire", "-s", srv.socket])).stdout);
    assert.equal(wire.event, "srv_snapshot");
    const [tree] = jsonLines((await runSrv(["snapshot", "--json", "-s", srv.socket])).stdout);
    assert.deepEqual(tree.workspaces, []);
  });
});
