// The import rules of ARCHITECTURE.md, checked on the source: every import
// under srv/ is read and judged by the folder it comes from and the one it
// goes to, and the module graph is checked for cycles. Reads files only.

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), "..", ".."));

type Room = "core" | "transport" | "server" | "client" | "cli" | "version";

/** What each room may import inside srv/ (node:* and deps.ts are always allowed). */
const MAY_IMPORT: Record<Room, readonly Room[]> = {
  core: ["core"],
  transport: ["transport"],
  server: ["core", "transport", "server", "version"],
  client: ["core", "transport", "client", "version"],
  cli: ["core", "transport", "server", "client", "cli", "version"],
  version: [],
};

function roomOf(path: string): Room {
  if (path === "srv/version.ts") return "version";
  const room = path.split("/")[1];
  if (room in MAY_IMPORT && room !== "version") return room as Room;
  throw new Error(`${path} is in no room: put it in srv/core, transport, server, client or cli`);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(join(ROOT, dir))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** The specifiers a module imports or re-exports, comments aside. */
function specifiersOf(text: string, options: { valuesOnly?: boolean } = {}): string[] {
  let code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  // `import type` is erased at run time, so it closes no cycle.
  if (options.valuesOnly) code = code.replace(/^(?:import|export) type [^;]*;/gm, "");
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)"([^"]+)"/g;
  for (const m of code.matchAll(pattern)) found.push(m[1]);
  return found;
}

interface Edge {
  readonly from: string;
  readonly to: string;
}

function srvEdges(options: { valuesOnly?: boolean } = {}): Edge[] {
  const edges: Edge[] = [];
  for (const file of sourceFiles("srv")) {
    for (const spec of specifiersOf(Deno.readTextFileSync(join(ROOT, file)), options)) {
      if (!spec.startsWith(".")) continue;
      const to = relative(ROOT, normalize(join(ROOT, dirname(file), spec))).replaceAll("\\", "/");
      edges.push({ from: file, to });
    }
  }
  return edges;
}

Deno.test("every srv/ file sits in a room", () => {
  for (const file of sourceFiles("srv")) roomOf(file);
});

Deno.test("imports inside srv/ follow the rooms' rules", () => {
  const broken: string[] = [];
  for (const { from, to } of srvEdges()) {
    if (to === "deps.ts") continue;
    if (!to.startsWith("srv/")) {
      broken.push(`${from} imports ${to}, outside srv/`);
      continue;
    }
    const a = roomOf(from);
    const b = roomOf(to);
    if (!MAY_IMPORT[a].includes(b)) broken.push(`${from} (${a}) imports ${to} (${b})`);
    // Inside transport/, adapters share only the interface.
    if (a === "transport" && b === "transport" && to !== "srv/transport/transport.ts") {
      broken.push(`${from} imports ${to}: transport files import only transport.ts`);
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("core imports no node:* module (it does no I/O)", () => {
  const broken: string[] = [];
  for (const file of sourceFiles("srv/core")) {
    for (const spec of specifiersOf(Deno.readTextFileSync(join(ROOT, file)))) {
      if (spec.startsWith("node:")) broken.push(`${file} imports ${spec}`);
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("the modules under srv/ have no run-time import cycle", () => {
  const next = new Map<string, string[]>();
  for (const { from, to } of srvEdges({ valuesOnly: true })) {
    if (!to.startsWith("srv/")) continue;
    next.set(from, [...(next.get(from) ?? []), to]);
  }
  const state = new Map<string, "active" | "done">();
  const cycles: string[] = [];
  const visit = (node: string, path: string[]) => {
    if (state.get(node) === "done") return;
    if (state.get(node) === "active") {
      cycles.push([...path.slice(path.indexOf(node)), node].join(" -> "));
      return;
    }
    state.set(node, "active");
    for (const to of next.get(node) ?? []) visit(to, [...path, node]);
    state.set(node, "done");
  };
  for (const file of sourceFiles("srv")) visit(file, []);
  assert.deepEqual(cycles, []);
});
