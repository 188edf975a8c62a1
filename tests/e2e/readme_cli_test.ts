// The README's first screen, its install line and its client snippet, run as
// written (only the socket path is the test server's): a person who follows
// them gets from nothing to a workspace shown in `srv snapshot`.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { unixOnly, withSrv } from "../_harness.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const README = await Deno.readTextFile(`${ROOT}README.md`);
const decoder = new TextDecoder();

/** The fenced blocks of one README section, in order. */
function blocks(section: string): string[] {
  const start = README.indexOf(`\n${section}\n`);
  assert.ok(start >= 0, `README has "${section}"`);
  const end = README.indexOf("\n## ", start + 1);
  const text = README.slice(start, end < 0 ? undefined : end);
  return [...text.matchAll(/```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1]);
}

async function sh(
  line: string,
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command("sh", {
    args: ["-c", line],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

Deno.test("README quick start: start, then ping, create, snapshot with SRV_SOCKET exported", {
  ignore: unixOnly("the quick start is written for a Unix shell"),
}, async () => {
  const [serve, client, install] = blocks("## Quick start");
  assert.equal(serve.trim(), "deno task start --memory --socket /tmp/srv-demo/srv.sock");
  const lines = client.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l);
  assert.equal(lines[0], "export SRV_SOCKET=/tmp/srv-demo/srv.sock");
  await withSrv(async (srv) => {
    let last = "";
    for (const line of lines.slice(1)) {
      assert.match(line, /^deno task -q srv /);
      const r = await sh(line, { SRV_SOCKET: srv.socket });
      assert.equal(r.code, 0, `${line}: ${r.stderr}`);
      assert.equal(r.stderr, "", `${line}: -q keeps the Task line off stderr`);
      last = r.stdout;
    }
    assert.match(last, /^workspace main \(\S+\)\n {2}\* tab shell \(\S+\)$/m);

    // The install line, into a scratch root instead of ~/.deno.
    const root = await Deno.makeTempDir();
    try {
      const line = install.trim();
      assert.match(line, /^deno install -g /);
      const done = await sh(line.replace("deno install -g ", `deno install -g --root ${root} `));
      assert.equal(done.code, 0, done.stderr);
      const ping = await sh(`${root}/bin/srv -s ${srv.socket} ping -j`);
      assert.equal(ping.code, 0, ping.stderr);
      assert.match(ping.stdout, /^\{"event":"pong"/);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
});

Deno.test("README client snippet runs to its end and exits", {
  ignore: unixOnly("the snippet's socket is a Unix path"),
}, async () => {
  const [snippet] = blocks("### The client");
  assert.ok(snippet.includes('connect({ socket: "/tmp/srv-demo/srv.sock" })'));
  await withSrv(async (srv) => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/client.ts`,
        snippet.replace("/tmp/srv-demo/srv.sock", srv.socket),
      );
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", `${ROOT}deno.json`, `${dir}/client.ts`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(r.code, 0, decoder.decode(r.stderr));
      assert.match(decoder.decode(r.stdout), /\d+ block_created\n$/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
