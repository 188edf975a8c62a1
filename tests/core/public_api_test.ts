// The public entry points keep their promises, checked on the source like the
// import rules: a script that imports the client loads no server code and no
// SQLite, and the root entry point stays free of the server. Reads files only.

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), "..", ".."));

/** What a module imports or re-exports at run time (`import type` is erased). */
function valueSpecifiersOf(text: string): string[] {
  const code = text
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "")
    .replace(/^(?:import|export) type [^;]*;/gm, "");
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)"([^"]+)"/g)].map((m) => m[1]);
}

/** Every module the entry loads at run time: repository paths and bare specifiers. */
function runTimeGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith(".ts")) continue;
    for (const spec of valueSpecifiersOf(Deno.readTextFileSync(join(ROOT, file)))) {
      pending.push(
        spec.startsWith(".")
          ? relative(ROOT, normalize(join(ROOT, dirname(file), spec))).replaceAll("\\", "/")
          : spec,
      );
    }
  }
  return seen;
}

const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));

Deno.test("deno.json exports the root, core, client and server entry points", () => {
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./core": "./srv/core/mod.ts",
    "./client": "./srv/client/mod.ts",
    "./server": "./srv/server/mod.ts",
  });
});

for (const entry of ["srv/client/mod.ts", "mod.ts", "srv/core/mod.ts"]) {
  Deno.test(`${entry} loads no server code and no node:sqlite`, () => {
    const graph = [...runTimeGraph(entry)];
    assert.deepEqual(graph.filter((m) => m.startsWith("srv/server/") || m === "node:sqlite"), []);
  });
}

Deno.test("the core entry point loads only core modules", () => {
  const graph = [...runTimeGraph("srv/core/mod.ts")];
  assert.deepEqual(graph.filter((m) => m.startsWith("srv/") && !m.startsWith("srv/core/")), []);
});
