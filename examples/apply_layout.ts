#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write --allow-env --allow-sys
/**
 * Applies a JSON layout file to srv as one atomic batch (protocol 2), then
 * prints what it created (one JSON object per line with `--json`). Other
 * clients see the whole layout appear at once, or nothing if any part is
 * refused. `srv apply FILE` does the same from the command line; this is
 * the library call behind it: `parseLayout`, `layoutCommands`, `batch`.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write --allow-env --allow-sys \
 *   examples/apply_layout.ts layout.json [--socket PATH] [--json]
 * ```
 *
 * The layout (`srv export` writes one; `id`s are optional and kept):
 *
 * ```json
 * { "workspaces": [
 *   { "name": "dev", "meta": { "color": "blue" },
 *     "tabs": [
 *       { "name": "editor", "blocks": [{ "meta": { "kind": "editor" } }] },
 *       { "name": "shell", "active": true, "blocks": [{ "meta": { "kind": "term" } }, {}] }
 *     ] }
 * ] }
 * ```
 *
 * Exit codes: 0 done, 2 unusable layout, 6 no srv, 7 srv refused the batch.
 *
 * @module
 */

// An example script's job is to print; console is its output.
// deno-lint-ignore-file no-console

import { parseArgs } from "node:util";
import {
  connect,
  layoutCommands,
  LayoutError,
  parseLayout,
  SrvError,
  UnreachableError,
} from "@srv/srv/client";

const { values, positionals } = parseArgs({
  options: { socket: { type: "string" }, json: { type: "boolean" } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  console.error("usage: apply_layout.ts LAYOUT.json [--socket PATH] [--json]");
  Deno.exit(2);
}
let commands;
try {
  // Ids are chosen here when the file has none, so every command can name
  // what an earlier one creates, and the batch can be retried safely.
  commands = layoutCommands(parseLayout(JSON.parse(await Deno.readTextFile(positionals[0]))));
} catch (e) {
  if (
    !(e instanceof LayoutError || e instanceof SyntaxError || e instanceof Deno.errors.NotFound)
  ) {
    throw e;
  }
  console.error(`apply_layout: ${positionals[0]}: ${e.message}`);
  Deno.exit(2);
}

// An empty layout (`srv export` of an empty tree) is nothing to do; a batch holds 1 to 1,000.
if (commands.length === 0) Deno.exit(0);

try {
  await using client = await connect({ socket: values.socket, reconnect: false });
  await client.register({ kind: "tool", version: "apply_layout example" });
  await client.batch(commands);
  for (const c of commands) {
    const [kind, name, id, parent] = c.cmd === "create_workspace"
      ? ["workspace", c.name, c.workspace_id, null]
      : c.cmd === "create_tab"
      ? ["tab", c.name, c.tab_id, c.workspace_id]
      : c.cmd === "create_block"
      ? ["block", "", c.block_id, c.tab_id]
      : [];
    if (kind === undefined) continue;
    if (values.json) console.log(JSON.stringify({ kind, name, id, parent }));
    else console.log(`${kind.padEnd(9)} ${id} ${name}`.trimEnd());
  }
} catch (e) {
  if (e instanceof UnreachableError) {
    console.error(`apply_layout: ${e.message}`);
    Deno.exit(6);
  }
  if (e instanceof SrvError) {
    console.error(`apply_layout: srv refused: ${e.message}`);
    Deno.exit(7);
  }
  throw e;
}
