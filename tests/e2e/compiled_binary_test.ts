// The standalone binary: build it with `deno task compile` and run the whole
// suite (`deno task test`, both transports) against it through
// SRV_TEST_BIN. `deno compile` needs a runtime (denort) that it downloads;
// this test runs only when one is already here (DENORT_BIN, or the zip in
// Deno's download cache) and otherwise says in one line why it skipped.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SRV_VERSION } from "../../srv/version.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TARGET = Deno.build.target;
const BINARY = join(ROOT, "dist", `srv-${TARGET}${Deno.build.os === "windows" ? ".exe" : ""}`);
const decoder = new TextDecoder();

/** Where `deno compile` finds its runtime, or why it cannot. */
async function compileRuntime(): Promise<{ found: string } | { missing: string }> {
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    return await exists(denort)
      ? { found: `DENORT_BIN=${denort}` }
      : { missing: `DENORT_BIN=${denort} does not exist` };
  }
  // The path deno compile itself checks before downloading
  // (cli/download_deno_binary.rs): <DENO_DIR>/dl/release/v<version>/denort-<target>.zip
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  const denoDir: string = JSON.parse(decoder.decode(info.stdout)).denoDir;
  const cached = join(denoDir, "dl", "release", `v${Deno.version.deno}`, `denort-${TARGET}.zip`);
  return await exists(cached) ? { found: cached } : {
    missing:
      `no denort runtime: DENORT_BIN is unset and ${cached} is not cached (deno compile would download it)`,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function skipReason(): Promise<string | null> {
  // Inside the run this test starts, the suite already targets the binary.
  if (Deno.env.get("SRV_TEST_BIN")) return "the suite is already running against SRV_TEST_BIN";
  const runtime = await compileRuntime();
  return "missing" in runtime ? runtime.missing : null;
}

const skip = await skipReason();
if (skip !== null) {
  Deno.stderr.writeSync(new TextEncoder().encode(`compiled-binary suite skipped: ${skip}\n`));
}

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("the compiled binary passes the whole suite, both transports", {
  ignore: skip !== null,
}, async () => {
  const compiled = await run(["task", "compile"]);
  assert.equal(compiled.code, 0, `deno task compile failed:\n${compiled.output}`);

  const version = await new Deno.Command(BINARY, { args: ["--version"] }).output();
  assert.equal(version.code, 0);
  assert.equal(decoder.decode(version.stdout).trim(), `srv ${SRV_VERSION}`);

  const suite = await run(["task", "test"], { SRV_TEST_BIN: BINARY });
  assert.equal(suite.code, 0, `suite against ${BINARY} failed:\n${suite.output.slice(-20_000)}`);
});
