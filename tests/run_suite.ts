// `deno task test`: the whole suite on the Unix transport (`tests/`) and,
// at the same time, `tests/e2e/transport/` again on the node:net transport.
// Most of the suite's time is spent waiting (on srv processes starting, on
// soft-limit and drain clocks), so the two runs overlap well; they share
// nothing but the machine (each test makes its own temp dir and socket).
// The first run's report streams as it goes; the node run's follows it
// whole, so the two never interleave. Exits non-zero if either failed.

const args = Deno.args;
const deno = Deno.execPath();

function run(env: Record<string, string>, paths: string[], piped: boolean) {
  return new Deno.Command(deno, {
    args: ["test", "--allow-all", ...args, ...paths],
    env,
    stdout: piped ? "piped" : "inherit",
    stderr: piped ? "piped" : "inherit",
  }).spawn();
}

const node = run({ SRV_TEST_TRANSPORT: "node" }, ["tests/e2e/transport/"], true);
const nodeOutput = node.output();
const unix = run({}, ["tests/"], false);
const unixStatus = await unix.status;
const { code: nodeCode, stdout, stderr } = await nodeOutput;
await Deno.stdout.write(
  new TextEncoder().encode("\n--- tests/e2e/transport/ on the node:net transport ---\n"),
);
await Deno.stdout.write(stdout);
await Deno.stdout.write(stderr);
Deno.exit(unixStatus.code !== 0 ? unixStatus.code : nodeCode);
