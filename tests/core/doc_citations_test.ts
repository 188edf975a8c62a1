// The protocol a reader can follow: every "docs/PROTOCOL.md §N" citation in
// the repository (doc comments, tests, README, ARCHITECTURE) names a section
// that exists, none cites PROTOCOL.md by another path, and no file points
// outside the repository (a `../shared/…` link is broken in every clone, on
// GitHub and on JSR).
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const PROTOCOL = "docs/PROTOCOL.md";
const SKIP_DIRS = new Set([".git", "dist", "node_modules"]);
const TEXT = /\.(ts|md|json|yml|yaml)$/;
/** This file, which names the outside paths it looks for. */
const SELF = "tests/core/doc_citations_test.ts";

async function repoFiles(dir = ""): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(new URL(dir || ".", ROOT))) {
    const path = dir + entry.name;
    if (entry.isDirectory && !SKIP_DIRS.has(entry.name)) files.push(...await repoFiles(path + "/"));
    else if (entry.isFile && TEXT.test(entry.name)) files.push(path);
  }
  return files;
}

function sections(protocol: string): Set<number> {
  return new Set([...protocol.matchAll(/^## (\d+)\. /gm)].map((m) => Number(m[1])));
}

// A citation: the path, maybe a line break inside a comment, then a list of
// sections such as "§7, §10", "§2–§4" or "§3, §4 and §6".
const CITATION =
  /docs\/PROTOCOL\.md(?:\s*(?:\*|\/\/)?\s*)((?:§\d+(?:[–-]§\d+)?)(?:(?:,\s*|\s+and\s+)§\d+(?:[–-]§\d+)?)*)/g;

/** The section numbers a citation's list names (a range counts both ends). */
function cited(list: string): number[] {
  return [...list.matchAll(/§(\d+)/g)].map((m) => Number(m[1]));
}

/** Where in `text` the character at `index` is, as `line N`. */
function lineOf(text: string, index: number): string {
  return `line ${text.slice(0, index).split("\n").length}`;
}

Deno.test("every docs/PROTOCOL.md §N citation names a section that exists", async () => {
  const protocol = await Deno.readTextFile(new URL(PROTOCOL, ROOT));
  const known = sections(protocol);
  // The sections themselves: numbered 1, 2, 3, ... with none skipped, §1–§10 at least.
  assert.deepEqual([...known], [...known].map((_, i) => i + 1), "sections numbered in order");
  assert.ok(known.size >= 10, `only ${known.size} sections`);
  const problems: string[] = [];
  let citations = 0;
  for (const file of await repoFiles()) {
    if (file === PROTOCOL) continue;
    const text = await Deno.readTextFile(new URL(file, ROOT));
    for (const m of text.matchAll(CITATION)) {
      citations++;
      for (const n of cited(m[1])) {
        if (!known.has(n)) problems.push(`${file} ${lineOf(text, m.index)}: no §${n}`);
      }
    }
    // Any other spelling of a section citation: a bare or other-path PROTOCOL.md.
    for (const m of text.matchAll(/(\S*)PROTOCOL\.md(?:\s*(?:\*|\/\/)?\s*)§/g)) {
      if (!/(^|[^\w.\/])docs\/$/.test(m[1])) {
        problems.push(`${file} ${lineOf(text, m.index)}: cite ${PROTOCOL}, not ${m[0]}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(citations > 50, `found only ${citations} citations: is the pattern still right?`);
});

Deno.test("docs/PROTOCOL.md's own § references name sections that exist", async () => {
  const protocol = await Deno.readTextFile(new URL(PROTOCOL, ROOT));
  const known = sections(protocol);
  const missing = [...protocol.matchAll(/§(\d+)/g)]
    .filter((m) => !known.has(Number(m[1])))
    .map((m) => `${lineOf(protocol, m.index)}: §${m[1]}`);
  assert.deepEqual(missing, []);
});

Deno.test("no file points outside the repository, and every relative Markdown link resolves", async () => {
  const problems: string[] = [];
  for (const file of await repoFiles()) {
    if (file === SELF) continue;
    const text = await Deno.readTextFile(new URL(file, ROOT));
    for (const m of text.matchAll(/\.\.\/shared\b|\/work\/shared\b/g)) {
      problems.push(`${file} ${lineOf(text, m.index)}: ${m[0]} is outside the repository`);
    }
    if (!file.endsWith(".md")) continue;
    for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const url = new URL(target, new URL(file, ROOT));
      if (!url.href.startsWith(ROOT.href)) {
        problems.push(`${file} ${lineOf(text, m.index)}: ${target} leaves the repository`);
        continue;
      }
      try {
        await Deno.stat(url);
      } catch {
        problems.push(`${file} ${lineOf(text, m.index)}: ${target} does not exist`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
