// The library imported by path from another project: a script in a temp dir,
// with no deno.json of srv's in sight (`--no-config`), imports mod.ts by its
// file URL, decodes a command line and reduces it. This holds only while
// deps.ts names its packages with full `npm:` specifiers; a bare name
// ("superstruct") resolves through srv's own import map and nowhere else.
import assert from "node:assert/strict";

const MOD = new URL("../../mod.ts", import.meta.url).href;

const SCRIPT = `
import assert from "node:assert/strict";
import { decodeCommand, initialState, update } from ${JSON.stringify(MOD)};

const decoded = decodeCommand('{"cmd":"create_workspace","name":"main"}');
assert.ok(decoded.ok);
const { state, events } = update(initialState(), decoded.command, {
  registeredPid: null,
  newId: () => "ws-1",
});
assert.deepEqual(events, [
  { event: "workspace_created", workspace_id: "ws-1", name: "main", version: 1 },
]);
assert.equal(state.eventVersion, 1);
console.log("reduced", events[0].event);
`;

Deno.test("mod.ts imports by path from a project without srv's deno.json and reduces a command", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-consumer-" });
  try {
    await Deno.writeTextFile(`${dir}/consumer.ts`, SCRIPT);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      // No permissions: importing the library and reducing needs none.
      args: ["run", "--no-config", "--no-lock", "consumer.ts"],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    assert.equal(new TextDecoder().decode(stdout), "reduced workspace_created\n", err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
