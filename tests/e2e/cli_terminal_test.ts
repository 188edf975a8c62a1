// The command line as people and scripts meet it (issue 15): a closed pipe,
// hostile names, addressing by prefix and name, help, completions, NO_COLOR,
// `send -`, and the smaller diagnoses. Each runs the real CLI against a real
// server.
import assert from "node:assert/strict";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { parseJson } from "../../srv/core/codec.ts";
import { type Json, runSrv, srvCommand, unixOnly, withSrv } from "../_harness.ts";
import { waitUntil } from "../_proc.ts";

function jsonLines(stdout: string): Json[] {
  return stdout.split("\n").filter((l) => l !== "").map((l) => parseJson(l));
}

/** Says why a check did not run, as the harness's skips do. */
function skip(reason: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`skipped: ${reason}\n`));
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

async function hasCommand(name: string): Promise<boolean> {
  try {
    const { code } = await new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0;
  } catch {
    return false;
  }
}

Deno.test("a reader that closes stdout ends every output verb quietly: exit 0, nothing on stderr", {
  ignore: unixOnly("closing a pipe's read end early is a Unix test"),
}, async () => {
  await withSrv(async (srv, connect) => {
    const c = await connect();
    await c.register(1);
    await c.request({ cmd: "create_workspace", name: "main" });
    for (
      const args of [
        ["snapshot"],
        ["snapshot", "--json"],
        ["events", "--since", "0"],
        ["events", "--follow", "--since", "0"],
        ["info"],
        ["ping", "--json"],
        ["help"],
        ["completions", "bash"],
      ]
    ) {
      const socket = args[0] === "help" || args[0] === "completions" ? [] : ["-s", srv.socket];
      const { cmd, args: full } = srvCommand([...args, ...socket]);
      const child = new Deno.Command(cmd, { args: full, stdout: "piped", stderr: "piped" })
        .spawn();
      // The read end goes before srv writes a byte: its first write is an EPIPE.
      await child.stdout.cancel();
      const { code, stderr } = await child.output();
      assert.equal(code, ExitCode.ok, `srv ${args.join(" ")}`);
      assert.equal(new TextDecoder().decode(stderr), "", `srv ${args.join(" ")}`);
    }
    // As a user types it: more history than a pipe holds, and `head -1`.
    const pings = Array.from({ length: 3000 }, (_, i) => `{"cmd":"ping","nonce":${i}}`);
    const fed = await runSrv(["send", "-", "--socket", srv.socket], { stdin: pings.join("\n") });
    assert.equal(fed.code, ExitCode.ok, fed.stderr);
    const piped = await new Deno.Command("bash", {
      args: [
        "-c",
        `${srvShell(["events", "--since", "0", "--json", "-s", srv.socket])} | head -1; ` +
        'echo "status=${PIPESTATUS[0]}" >&2',
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(jsonLines(new TextDecoder().decode(piped.stdout)).length, 1);
    assert.equal(new TextDecoder().decode(piped.stderr), "status=0\n");
  });
});

Deno.test("names and meta cannot drive the terminal: escaped for people, exact in --json", async () => {
  await withSrv(async (srv) => {
    const run = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    const hostile = "\u001b]0;pwned\u0007a\nb";
    const ws = await run("workspace", "create", hostile, "-q");
    assert.equal(ws.code, ExitCode.ok, ws.stderr);
    const wsId = ws.stdout.trim();
    const tab = await run("tab", "create", wsId, "x\u202eevil\u009b2J", "-q");
    assert.equal(tab.code, ExitCode.ok, tab.stderr);
    const block = await run("block", "create", tab.stdout.trim(), "--meta", '{"t":"\\u001b[31m"}');
    assert.equal(block.code, ExitCode.ok, block.stderr);
    // deno-lint-ignore no-control-regex -- finding controls is the point
    const unsafe = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

    const tree = await run("snapshot");
    assert.equal(tree.code, ExitCode.ok);
    assert.doesNotMatch(tree.stdout, unsafe, "no control reaches stdout");
    const lines = tree.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 4, "header, then one line per entity");
    assert.equal(lines[1], `workspace \\x1b]0;pwned\\x07a\\nb (${wsId})`);
    assert.match(lines[2], /^ {2}\* tab x\\u202eevil\\x9b2J \(/);
    assert.match(lines[3], /^ {6}block \S+ \{"t":"\\u001b\[31m"\}$/);

    const events = await run("events", "--since", "0");
    assert.doesNotMatch(events.stdout, unsafe);
    assert.ok(events.stdout.includes(String.raw`name="\u001b]0;pwned\u0007a\nb"`));

    const [json] = jsonLines((await run("snapshot", "--json")).stdout);
    assert.equal(json.workspaces[0].name, hostile, "--json carries the name as it is");
    assert.equal(json.workspaces[0].tabs[0].name, "x\u202eevil\u009b2J");
  });
});

Deno.test("ids by full id, unique prefix or unique name; ambiguity lists the candidates (exit 2)", async () => {
  await withSrv(async (srv) => {
    const run = (...args: string[]) => runSrv([...args, "--socket", srv.socket]);
    const id = async (...args: string[]) => {
      const r = await run(...args, "-q");
      assert.equal(r.code, ExitCode.ok, r.stderr);
      assert.match(r.stdout, /^\S+\n$/, "-q prints the new id alone");
      return r.stdout.trim();
    };
    const main = await id("workspace", "create", "main");
    const work = await id("workspace", "create", "work");
    const shell = await id("tab", "create", "main", "shell");
    const workShell = await id("tab", "create", work.slice(0, 8), "shell");
    await id("tab", "create", "main", "logs");
    const block = await id("block", "create", shell);

    const [activated] = jsonLines((await run("tab", "activate", "main", "logs", "-j")).stdout);
    assert.equal(activated.workspace_id, main, "a workspace by name");
    // Two tabs are named shell: within the workspace given, one is.
    const [inWs] = jsonLines((await run("tab", "activate", "main", "shell", "-j")).stdout);
    assert.equal(inWs.tab_id, shell, "a tab by name within the workspace given");
    const twoShells = await run("tab", "rename", "shell", "x");
    assert.equal(twoShells.code, ExitCode.usage, "no workspace given: both match");
    assert.match(twoShells.stderr, /^srv tab rename: TAB "shell" matches 2 tabs: /);
    const [renamed] = jsonLines(
      (await run("tab", "rename", workShell.slice(0, 6), "sh", "-j")).stdout,
    );
    assert.equal(renamed.tab_id, workShell, "a unique prefix");
    const [byName] = jsonLines((await run("tab", "meta", "shell", '{"a":1}', "-j")).stdout);
    assert.equal(byName.tab_id, shell, "the only tab named shell now");
    const [moved] = jsonLines(
      (await run("block", "meta", block.slice(0, 5), '{"k":2}', "-j")).stdout,
    );
    assert.equal(moved.block_id, block, "a block by prefix");

    await id("workspace", "create", "main");
    const ambiguous = await run("tab", "create", "main", "x");
    assert.equal(ambiguous.code, ExitCode.usage);
    assert.equal(ambiguous.stdout, "");
    const [first, second] = ambiguous.stderr.split("\n");
    assert.match(first, /^srv tab create: WS "main" matches 2 workspaces: /);
    assert.ok(first.includes(`${main} (main)`), first);
    assert.equal(second, "see: srv help tab create");

    const unknown = await run("tab", "create", "nowhere", "x");
    assert.equal(
      unknown.code,
      ExitCode.serverError,
      `no match: not found, said without sending; ${unknown.stderr}`,
    );
    assert.equal(unknown.stderr, 'srv: no workspace matches "nowhere"\n');

    // The lookups read the tree as an observer: a registered client's
    // snapshot would be broadcast to every connection and take a version,
    // leaving a gap in the log. No command here was refused by srv.
    const versions = jsonLines((await run("events", "--json")).stdout).map((e) => e.version);
    assert.deepEqual(versions, versions.map((_, i) => i + 1), "no version went to a snapshot");
    const [info] = jsonLines((await run("info", "--json")).stdout);
    assert.equal(info.event_version, versions.length);
  });
});

Deno.test("global flags anywhere, short flags, one-line usage errors with a pointer", async () => {
  await withSrv(async (srv) => {
    for (
      const args of [
        ["--socket", srv.socket, "ping", "--json"],
        ["-s", srv.socket, "-j", "ping"],
        ["ping", "-s", srv.socket, "-j"],
        ["-j", "ping", `--socket=${srv.socket}`],
      ]
    ) {
      const r = await runSrv(args);
      assert.equal(r.code, ExitCode.ok, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(jsonLines(r.stdout)[0].event, "pong", args.join(" "));
    }
    for (
      const [args, first] of [
        [["ping", "--sock", "x"], "srv ping: unknown flag --sock"],
        [["ping", "-1"], "srv ping: unknown flag -1"],
        [["tab", "create"], "srv tab create: needs WS NAME"],
        [["events", "--since"], "srv events: --since needs a value"],
        [["info", "extra"], 'srv info: takes no arguments, got "extra"'],
      ] as const
    ) {
      const r = await runSrv(["-s", srv.socket, ...args]);
      assert.equal(r.code, ExitCode.usage, args.join(" "));
      const verb = first.slice(4, first.indexOf(":"));
      assert.equal(r.stderr, `${first}\nsee: srv help ${verb}\n`);
    }
    // Before the verb, an unknown flag must not swallow the verb as its value.
    const early = await runSrv(["--sock", srv.socket, "ping"]);
    assert.equal(early.code, ExitCode.usage);
    assert.equal(early.stderr, "srv: unknown flag --sock\nsee: srv help\n");
  });
});

Deno.test("help: every verb's page from the table, within 80 columns, with an example", async () => {
  const overview = await runSrv(["help"]);
  assert.equal(overview.code, ExitCode.ok);
  const verbs = [...overview.stdout.matchAll(/^ {2}([a-z]+(?: [a-z]+)?)(?= |$)/gm)]
    .map((m) => m[1])
    .filter((v) => !v.startsWith("-"));
  for (
    const v of ["serve", "ping", "snapshot", "send", "tab create", "block meta", "completions"]
  ) {
    assert.ok(verbs.includes(v), `the overview lists ${v}`);
  }
  const pages = [
    overview.stdout,
    (await runSrv(["--help"])).stdout,
    (await runSrv(["help", "tab"])).stdout,
  ];
  for (const verb of verbs) {
    const page = await runSrv(["help", ...verb.split(" ")]);
    assert.equal(page.code, ExitCode.ok, verb);
    assert.match(page.stdout, new RegExp(`^Usage: srv ${verb}`), verb);
    assert.match(page.stdout, /\nExample:\n {2}\S/, verb);
    const flag = await runSrv([...verb.split(" "), "-h"]);
    assert.equal(flag.stdout, page.stdout, `srv ${verb} -h is srv help ${verb}`);
    pages.push(page.stdout);
  }
  for (const page of pages) {
    for (const line of page.split("\n")) assert.ok(line.length <= 80, `too wide: ${line}`);
  }
  const serve = await runSrv(["help", "serve"]);
  assert.match(serve.stdout, /--data-dir DIR/);
  assert.match(serve.stdout, /-s, --socket PATH/);
});

Deno.test("completions: bash is valid bash and completes verbs and flags; zsh and fish when present", async () => {
  for (const shell of ["bash", "zsh", "fish"]) {
    const r = await runSrv(["completions", shell]);
    assert.equal(r.code, ExitCode.ok, shell);
    if (!(await hasCommand(shell))) {
      skip(`completions ${shell}: syntax not checked (no ${shell} on this machine)`);
      continue;
    }
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/srv.${shell}`, r.stdout);
      const check = await new Deno.Command(shell, {
        args: ["-n", `${dir}/srv.${shell}`],
        stderr: "piped",
      }).output();
      assert.equal(check.code, 0, `${shell} -n: ${new TextDecoder().decode(check.stderr)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  if (!(await hasCommand("bash"))) return;
  const script = (await runSrv(["completions", "bash"])).stdout;
  const complete = async (line: string[]) => {
    const program = `${script}\nCOMP_WORDS=(${line.map(shq).join(" ")}); ` +
      `COMP_CWORD=${line.length - 1}; _srv; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const out = await new Deno.Command("bash", { args: ["-c", program], stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).trim().split("\n");
  };
  assert.ok((await complete(["srv", "ta"])).includes("tab"));
  assert.deepEqual(await complete(["srv", "-s", "/x", "tab", "reo"]), ["reorder"]);
  assert.ok((await complete(["srv", "workspace", "create", "x", "--q"])).includes("--quiet"));
  if (await hasCommand("fish")) {
    const fish = (await runSrv(["completions", "fish"])).stdout;
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/srv.fish`, fish);
      const ask = async (line: string) => {
        const out = await new Deno.Command("fish", {
          args: ["-c", `source ${shq(`${dir}/srv.fish`)}; complete -C ${shq(line)}`],
          stdout: "piped",
        }).output();
        return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split("\t")[0]);
      };
      assert.ok((await ask("srv tab cr")).includes("create"));
      const flags = await ask("srv tab create main x --");
      assert.ok(flags.includes("--quiet") && flags.includes("--socket"));
      assert.ok(!flags.includes("--meta"), "block create's flag is not tab create's");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const bad = await runSrv(["completions", "tcsh"]);
  assert.equal(bad.code, ExitCode.usage);
});

Deno.test("send -: one command per stdin line, each reply printed, a bad line named by number", async () => {
  await withSrv(async (srv) => {
    const send = (stdin: string) => runSrv(["send", "-", "-s", srv.socket], { stdin });
    const ok = await send('{"cmd":"ping","nonce":1}\n\n{"cmd":"create_workspace","name":"a"}\n');
    assert.equal(ok.code, ExitCode.ok, ok.stderr);
    const lines = ok.stdout.trimEnd().split("\n");
    assert.match(lines[0], /^v\d+ pong nonce=1$/);
    assert.match(lines[1], /^v\d+ workspace_created workspace_id=\S+ name=a$/);
    const refused = await send(
      '{"cmd":"rename_tab","tab_id":"x","name":"y"}\n{"cmd":"ping","nonce":4}',
    );
    assert.equal(refused.code, ExitCode.serverError, "a refused command: exit 7 at the end");
    assert.match(refused.stdout, /error code=invalid_command .*\n.*pong/);
    const bad = await send(
      '{"cmd":"ping","nonce":2}\n{"cmd":"ping","nonce":3}\nnope\n{"cmd":"ping"}\n',
    );
    assert.equal(bad.code, ExitCode.usage);
    assert.equal(bad.stdout.trimEnd().split("\n").length, 2, "the lines before it were sent");
    assert.match(bad.stderr, /^srv send: line 3 is not JSON/);
  });
});

Deno.test("server hints in CLI terms; --memory with --data-dir refused; a regular file at the socket", async () => {
  await withSrv(async (srv) => {
    const run = (...args: string[]) => runSrv([...args, "-s", srv.socket]);
    const ws = (await run("workspace", "create", "w", "-q")).stdout.trim();
    const other = (await run("workspace", "create", "v", "-q")).stdout.trim();
    const tab = (await run("tab", "create", ws, "t", "-q")).stdout.trim();
    const last = await run("tab", "delete", ws, tab);
    assert.equal(last.code, ExitCode.serverError);
    assert.match(last.stderr, /without --force\n$/);
    const move = await run("tab", "move", tab, ws, ws, "0");
    assert.match(move.stderr, /; use "srv tab reorder"\n$/);
    assert.ok(other !== "");
  });
  const both = await runSrv(["serve", "--memory", "--data-dir", "/tmp/nowhere"]);
  assert.equal(both.code, ExitCode.usage);
  assert.match(both.stderr, /^srv serve: --memory keeps no store, so --data-dir has nothing to do/);
  if (Deno.build.os === "windows") return;
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/plain`;
    await Deno.writeTextFile(file, "");
    const client = await runSrv(["ping", "-s", file]);
    assert.equal(client.code, ExitCode.unreachable);
    assert.equal(client.stderr, `srv: no srv at ${file} (it is a regular file, not a socket)\n`);
    const server = await runSrv(["serve", "--memory", "-s", file]);
    assert.equal(server.code, ExitCode.endpointUnsafe);
    assert.match(server.stderr, /exists and is not a socket \(it is a regular file\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("colour in the server's log only on a terminal, and never with NO_COLOR", {
  ignore: unixOnly("a pseudo terminal through script(1)"),
}, async () => {
  if (!(await hasCommand("script"))) {
    skip("colour test: no script(1) for a pseudo terminal");
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    const logOnTty = async (env: Record<string, string>, name: string) => {
      const socket = `${dir}/${name}.sock`;
      // srv's stderr is the pseudo terminal; the shell stops it once it listens.
      const inner = `${srvShell(["serve", "--memory", "-s", socket])} & pid=$!; ` +
        `i=0; until [ -S ${shq(socket)} ] || [ $i -ge 400 ]; do sleep 0.05; i=$((i+1)); done; ` +
        `kill $pid; wait $pid`;
      const r = await new Deno.Command("script", {
        args: ["-qec", inner, "/dev/null"],
        env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(r.stdout);
    };
    const colour = await logOnTty({}, "colour");
    assert.match(colour, /listening on/);
    assert.ok(colour.includes("\u001b["), "a terminal gets colour");
    const plain = await logOnTty({ NO_COLOR: "1" }, "plain");
    assert.match(plain, /listening on/);
    assert.ok(!plain.includes("\u001b["), "NO_COLOR: none");
    const help = await new Deno.Command("script", {
      args: ["-qec", srvShell(["help"]), "/dev/null"],
      stdin: "null",
      stdout: "piped",
    }).output();
    assert.ok(!new TextDecoder().decode(help.stdout).includes("\u001b"), "the CLI never colours");
    // A pipe is no terminal: the log there is plain whatever NO_COLOR says.
    await withSrv(async (srv) => {
      await waitUntil("srv logged", () => srv.stderr().includes("listening on"));
      assert.ok(!srv.stderr().includes("\u001b["));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
