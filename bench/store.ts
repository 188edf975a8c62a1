/**
 * `deno task bench:store [--blocks N] [--tabs N] [--seconds S]`: the durable
 * store at size (issue 12). Builds a tree of 100,000 blocks over 100 tabs
 * with 1 KB of meta each in a store-backed srv, then measures, in one run:
 *
 * - the longest pause a second client sees (its `get_server_info` round
 *   trip, max over the window) while a writer sends 100 commands/s;
 * - SIGTERM to exit, and SIGTERM to the data-dir lock being free;
 * - start to readiness with that store;
 * - pipelined `update_block_meta`, store on vs `--memory` (same tree), in
 *   alternating rounds.
 *
 * Writes the figures into the "Durable state at size" section of
 * `bench/results.md` (between markers; `deno task bench` keeps that section)
 * and prints them. Not a test: nothing here fails on a missed goal.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { tryLockFile } from "../srv/server/lock_file.ts";
import { killAll, type Running, startTarget } from "./_servers.ts";
import { STORE_SECTION_END, STORE_SECTION_START } from "./_store_section.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ROOT = new URL("../", import.meta.url).pathname;

function say(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text + "\n"));
}

/** A raw connection that counts lines and hands them to a matcher. */
class Wire {
  readonly conn: Deno.UnixConn;
  #buffer = "";
  #lines = 0;
  #waiters: { n: number; resolve: () => void }[] = [];
  #match: ((line: string) => void) | null = null;
  readonly done: Promise<void>;

  private constructor(conn: Deno.UnixConn) {
    this.conn = conn;
    this.done = this.#pump();
  }

  static async open(socket: string): Promise<Wire> {
    return new Wire(await Deno.connect({ transport: "unix", path: socket }));
  }

  get lines(): number {
    return this.#lines;
  }

  async #pump(): Promise<void> {
    const buf = new Uint8Array(1 << 20);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        const text = this.#buffer + decoder.decode(buf.subarray(0, n), { stream: true });
        let start = 0;
        for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", start)) {
          this.#lines++;
          if (this.#match !== null) this.#match(text.slice(start, i));
          start = i + 1;
        }
        this.#buffer = text.slice(start);
        this.#waiters = this.#waiters.filter((w) => {
          if (this.#lines < w.n) return true;
          w.resolve();
          return false;
        });
      }
    } catch {
      // Closed.
    }
  }

  /** Resolves once `n` lines in total have arrived. */
  untilLines(n: number): Promise<void> {
    if (this.#lines >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  /** Resolves with the first line (from now) that `test` accepts. */
  next(test: (line: string) => boolean): Promise<string> {
    return new Promise((resolve) => {
      this.#match = (line) => {
        if (!test(line)) return;
        this.#match = null;
        resolve(line);
      };
    });
  }

  async send(lines: string[]): Promise<void> {
    const bytes = encoder.encode(lines.join("\n") + "\n");
    for (let off = 0; off < bytes.length;) off += await this.conn.write(bytes.subarray(off));
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function request(wire: Wire, line: string, event: string): Promise<Record<string, never>> {
  const reply = wire.next((l) => l.startsWith(`{"event":"${event}"`));
  await wire.send([line]);
  return JSON.parse(await reply);
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    blocks: { type: "string", default: "100000" },
    tabs: { type: "string", default: "100" },
    seconds: { type: "string", default: "20" },
    "no-write": { type: "boolean", default: false },
  },
});
const BLOCKS = Number(values.blocks);
const TABS = Number(values.tabs);
const SECONDS = Number(values.seconds);
const META = "m".repeat(1000);

/** Registers, then builds `TABS` tabs holding `BLOCKS` blocks of 1 KB meta; returns block ids. */
async function populate(srv: Running): Promise<{ ms: number; blockIds: string[] }> {
  const t0 = performance.now();
  const w = await Wire.open(srv.socket);
  await request(
    w,
    JSON.stringify({ cmd: "register", kind: "tool", pid: 1, version: "b" }),
    "registered",
  );
  const ws = await request(w, '{"cmd":"create_workspace","name":"bench"}', "workspace_created");
  const tabIds: string[] = [];
  for (let t = 0; t < TABS; t++) {
    const tab = await request(
      w,
      JSON.stringify({ cmd: "create_tab", workspace_id: ws.workspace_id, name: `t${t}` }),
      "tab_created",
    );
    tabIds.push(tab.tab_id);
  }
  const blockIds: string[] = [];
  const collect = (line: string) => {
    if (line.startsWith('{"event":"block_created"')) {
      const from = line.indexOf('"block_id":"') + 12;
      const id = line.slice(from, line.indexOf('"', from));
      blockIds.push(id);
    }
    return false;
  };
  void w.next(collect); // never resolves: it only collects
  const CHUNK = 500;
  for (let i = 0; i < BLOCKS; i += CHUNK) {
    const lines = [];
    for (let j = i; j < Math.min(BLOCKS, i + CHUNK); j++) {
      lines.push(
        JSON.stringify({ cmd: "create_block", tab_id: tabIds[j % TABS], meta: { j, pad: META } }),
      );
    }
    const before = w.lines;
    await w.send(lines);
    await w.untilLines(before + lines.length);
  }
  w.close();
  await w.done;
  return { ms: performance.now() - t0, blockIds };
}

/** A second client's get_server_info round trips while a writer sends 100 commands/s. */
async function pauses(srv: Running, blockIds: string[]) {
  const writer = await Wire.open(srv.socket);
  await request(
    writer,
    JSON.stringify({ cmd: "register", kind: "tool", pid: 3, version: "b" }),
    "registered",
  );
  const prober = await Wire.open(srv.socket);
  await request(
    prober,
    JSON.stringify({ cmd: "register", kind: "tool", pid: 4, version: "b" }),
    "registered",
  );
  let writing = true;
  let sent = 0;
  const writing100 = (async () => {
    const t0 = performance.now();
    while (writing) {
      const id = blockIds[(sent * 7919) % blockIds.length];
      await writer.send([
        JSON.stringify({ cmd: "update_block_meta", block_id: id, meta_patch: { n: sent } }),
      ]);
      sent++;
      const due = t0 + sent * 10;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  })();
  const rtts: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await request(prober, '{"cmd":"get_server_info"}', "server_info");
    rtts.push(performance.now() - t);
  }
  writing = false;
  await writing100;
  writer.close();
  prober.close();
  await Promise.all([writer.done, prober.done]);
  rtts.sort((a, b) => a - b);
  return {
    probes: rtts.length,
    writes: sent,
    maxMs: rtts.at(-1)!,
    p99Ms: rtts[Math.floor(rtts.length * 0.99)],
    p50Ms: rtts[Math.floor(rtts.length / 2)],
  };
}

/** SIGTERM: time to exit and time until the data dir's lock can be taken. */
async function sigterm(srv: Running, dataDir: string) {
  const t0 = performance.now();
  let lockMs = NaN;
  const lockFree = (async () => {
    while (true) {
      const lock = await tryLockFile(`${dataDir}/srv.lock`);
      if (lock !== null) {
        lockMs = performance.now() - t0;
        lock.close();
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  Deno.kill(srv.pid, "SIGTERM");
  await srv.stop();
  const exitMs = performance.now() - t0;
  await lockFree;
  return { exitMs, lockMs };
}

/** Pipelined update_block_meta: commands/s over `n` commands in batches of 64. */
let nextPid = 100;

async function pipelined(
  srv: Running,
  blockIds: string[],
  n: number,
  hot: boolean,
): Promise<number> {
  const w = await Wire.open(srv.socket);
  const pid = nextPid++;
  await request(
    w,
    JSON.stringify({ cmd: "register", kind: "tool", pid, version: "b" }),
    "registered",
  );
  const base = w.lines;
  let errors = 0;
  void w.next((line) => {
    if (line.startsWith('{"event":"error"')) errors++;
    return false;
  });
  const t0 = performance.now();
  const BATCH = 64;
  for (let i = 0; i < n; i += BATCH) {
    const lines = [];
    for (let j = i; j < i + BATCH; j++) {
      lines.push(
        JSON.stringify({
          cmd: "update_block_meta",
          block_id: hot ? blockIds[pid % blockIds.length] : blockIds[(j * 7919) % blockIds.length],
          meta_patch: { n: j },
        }),
      );
    }
    await w.send(lines);
    // Keep at most 16 batches in flight, like a client that reads as it writes.
    await w.untilLines(base + Math.max(0, i - 16 * BATCH));
  }
  await w.untilLines(base + n);
  const rate = n / ((performance.now() - t0) / 1000);
  if (errors > 0) throw new Error(`pipelined: ${errors} of ${n} commands failed`);
  w.close();
  await w.done;
  return rate;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function rssMb(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+)/m);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-bench-store-" });
  const dataDir = `${dir}/store/data`;
  const started = new Date();
  try {
    say(`bench:store: ${BLOCKS} blocks over ${TABS} tabs, 1 KB meta each; data dir ${dataDir}`);
    let store = await startTarget("srv_store", { dir: `${dir}/store`, srv: {} });
    const built = await populate(store);
    say(`  built in ${(built.ms / 1000).toFixed(1)} s; srv RSS ${rssMb(store.pid).toFixed(0)} MB`);
    const dbBytes = (await Deno.stat(`${dataDir}/srv.db`)).size +
      ((await Deno.stat(`${dataDir}/srv.db-wal`).catch(() => null))?.size ?? 0);
    const p = await pauses(store, built.blockIds);
    say(
      `  pauses: max ${p.maxMs.toFixed(1)} ms, p99 ${
        p.p99Ms.toFixed(2)
      } ms over ${p.probes} probes, ${p.writes} writes`,
    );
    const term = await sigterm(store, dataDir);
    say(`  SIGTERM: exit ${term.exitMs.toFixed(0)} ms, lock free ${term.lockMs.toFixed(0)} ms`);
    store = await startTarget("srv_store", { dir: `${dir}/store`, srv: {} });
    const readyMs = store.readyMs;
    const readyRss = rssMb(store.pid);
    say(`  start to readiness: ${readyMs.toFixed(0)} ms (RSS ${readyRss.toFixed(0)} MB)`);
    const memory = await startTarget("srv", { dir: `${dir}/memory`, srv: {} });
    const memoryBuilt = await populate(memory);
    const N = 20_000;
    const ROUNDS = 5;
    const measure = async (hot: boolean) => {
      const rates = { store: [] as number[], memory: [] as number[] };
      // A round each to warm up (JIT, caches) that is not counted.
      await pipelined(memory, memoryBuilt.blockIds, N / 4, hot);
      await pipelined(store, built.blockIds, N / 4, hot);
      for (let round = 0; round < ROUNDS; round++) {
        rates.memory.push(await pipelined(memory, memoryBuilt.blockIds, N, hot));
        rates.store.push(await pipelined(store, built.blockIds, N, hot));
      }
      const ratio = median(rates.store.map((s, i) => s / rates.memory[i]));
      say(
        `  pipelined update_block_meta (${hot ? "one block" : "spread"}): store ${
          median(rates.store).toFixed(0)
        }/s, memory ${median(rates.memory).toFixed(0)}/s, ratio ${ratio.toFixed(2)}x`,
      );
      return { ratio, store: median(rates.store), memory: median(rates.memory) };
    };
    const hot = await measure(true);
    const spread = await measure(false);
    const term2 = await sigterm(store, dataDir);
    await memory.stop();
    const goal = (ok: boolean) => ok ? "pass" : "MISSED";
    const section = [
      STORE_SECTION_START,
      "## Durable state at size (issue 12)",
      "",
      `Written by \`deno task bench:store\` on ${started.toISOString()} (srv ${await rev()}). ` +
      `${BLOCKS.toLocaleString("en")} blocks over ${TABS} tabs with 1 KB of meta each ` +
      `(built in ${(built.ms / 1000).toFixed(1)} s; srv.db + WAL ${
        (dbBytes / 1048576).toFixed(0)
      } MB). ` +
      "Same machine and caveats as above: the load process shares the cores.",
      "",
      "| Measure | Result | Goal | |",
      "| --- | ---: | ---: | --- |",
      `| Longest get_server_info round trip, writer at 100 commands/s (${SECONDS} s, ${p.probes} probes) | ${
        p.maxMs.toFixed(1)
      } ms (p99 ${p.p99Ms.toFixed(2)}, p50 ${p.p50Ms.toFixed(2)}) | ≤ 50 ms | ${
        goal(p.maxMs <= 50)
      } |`,
      `| SIGTERM to exit | ${term.exitMs.toFixed(0)} ms (again after the pipelined rounds: ${
        term2.exitMs.toFixed(0)
      }) | ≤ 1000 ms | ${goal(Math.max(term.exitMs, term2.exitMs) <= 1000)} |`,
      `| SIGTERM to data-dir lock free | ${term.lockMs.toFixed(0)} ms (again: ${
        term2.lockMs.toFixed(0)
      }) | ≤ 1000 ms | ${goal(Math.max(term.lockMs, term2.lockMs) <= 1000)} |`,
      `| Start to readiness | ${readyMs.toFixed(0)} ms (RSS ${
        readyRss.toFixed(0)
      } MB) | ≤ 3000 ms | ${goal(readyMs <= 3000)} |`,
      `| Pipelined update_block_meta to one block per client, store ÷ --memory (median of ${ROUNDS} ` +
      `alternating rounds, after a warm-up round, of ${N.toLocaleString("en")}) | ${
        hot.ratio.toFixed(2)
      }x ` +
      `(${hot.store.toFixed(0)}/s vs ${hot.memory.toFixed(0)}/s) | ≥ 0.85x | ${
        goal(hot.ratio >= 0.85)
      } |`,
      `| Same, each command to a different block (spread over the tree) | ` +
      `${spread.ratio.toFixed(2)}x (${spread.store.toFixed(0)}/s vs ${
        spread.memory.toFixed(0)
      }/s) ` +
      `| ≥ 0.85x | ${goal(spread.ratio >= 0.85)} |`,
      "",
      "Where the store's time goes: each turn commits its events as one row plus one row per " +
      "entity the turn changed. Commands to one block coalesce into one row write per turn, so " +
      "that case pays the per-commit cost (the batch row, the scalars, WAL frames) spread over " +
      "the turn's commands. Commands spread over 100,000 blocks rewrite one 1 KB row, hence one " +
      "4 KB page into the WAL (and later its checkpoint), per command: that, not the reducer, " +
      "bounds the spread case. Pauses: the longest round trip varies from run to run with when " +
      "SQLite's WAL auto-checkpoint (every 10,000 pages) lands; it blocks the turn that triggers it.",
      STORE_SECTION_END,
    ].join("\n");
    if (!values["no-write"]) {
      const path = `${ROOT}bench/results.md`;
      const old = await Deno.readTextFile(path).catch(() => "");
      const a = old.indexOf(STORE_SECTION_START);
      const b = old.indexOf(STORE_SECTION_END);
      const next = a >= 0 && b > a
        ? old.slice(0, a) + section + old.slice(b + STORE_SECTION_END.length)
        : old.trimEnd() + "\n\n" + section + "\n";
      await Deno.writeTextFile(path, next);
      say(`wrote the store section of ${path}`);
    } else {
      say(section);
    }
  } finally {
    killAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function rev(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["-C", ROOT, "rev-parse", "--short", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return decoder.decode(out.stdout).trim() || "unknown";
  } catch {
    return "unknown";
  }
}

if (import.meta.main) await main();
