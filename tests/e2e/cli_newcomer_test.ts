// What a newcomer found walking the README on a fresh clone: a full disk on
// stdout, broken answers, ambiguous tree output, help that says the wrong
// thing, completions of values, names that match nothing, a server that
// never answers, and the smaller wording. Each runs the real CLI, against a
// real server where one matters.
import assert from "node:assert/strict";
import { ExitCode } from "../../srv/cli/exit_code.ts";
import { srvCommand, unixOnly, withSrv } from "../_harness.ts";

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
