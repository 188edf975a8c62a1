// The fuzz campaign shared by tests/e2e/transport/fuzz_test.ts (a few seconds, in
// `deno task test`) and tests/soak.ts (`deno task soak`, minutes). Many
// concurrent hostile clients send seeded random bytes and random mixes of
// valid, invalid, oversized and truncated lines, read or never read, and
// vanish in every way a client can. Alongside, an observer checks the whole
// broadcast stream and a well-behaved client checks its own answers.
import { type Json, type SrvProcess, TestClient } from "./_harness.ts";
import { connectionSocketCount, rssBytes, waitUntil } from "./_proc.ts";

const encoder = new TextEncoder();

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** An independent generator, so each client's inputs depend only on the seed. */
  fork(): Rng {
    return new Rng(this.int(2 ** 32));
  }

  /** A u64 as decimal digits, often above 2^53. */
  u64(): string {
    const hi = BigInt(this.int(2 ** 32));
    const lo = BigInt(this.int(2 ** 32));
    return ((hi << 32n) | lo).toString();
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/**
 * The srv flags a campaign runs against: memory only, the campaign's line
 * cap, and small queue bounds so sleepers are evicted within seconds; the
 * connection cap is chosen a little short so it refuses some clients.
 */
export function fuzzServerFlags(maxLineBytes: number, maxConnections: number): string[] {
  return [
    "--memory",
    "--max-line-bytes",
    String(maxLineBytes),
    "--max-queue-bytes",
    "1048576",
    "--soft-queue-bytes",
    "262144",
    "--soft-queue-time",
    "1s",
    "--max-connections",
    String(maxConnections),
  ];
}

/** The seed: `SRV_FUZZ_SEED` when set (to replay a failure), else random. */
export function fuzzSeed(): number {
  const raw = Deno.env.get("SRV_FUZZ_SEED");
  if (raw === undefined || raw === "") return crypto.getRandomValues(new Uint32Array(1))[0];
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`SRV_FUZZ_SEED must be an integer in [0, 2^32), got "${raw}"`);
  }
  return seed;
}

/** Entity ids seen in the stream, so fuzz commands sometimes hit real ones. */
class Known {
  readonly workspaces: string[] = [];
  readonly tabs: string[] = [];
  readonly blocks: string[] = [];

  add(list: string[], id: string): void {
    list.push(id);
    if (list.length > 64) list.shift();
  }
}

/** Pids the fuzz clients register with; the observer and good client use others. */
const FUZZ_PID_BASE = 1000;
const FUZZ_PID_COUNT = 256;
const OBSERVER_PID = 1;
const GOOD_PID = 2;

function uuid(rng: Rng): string {
  const hex = () => rng.int(16).toString(16);
  const part = (n: number) => Array.from({ length: n }, hex).join("");
  return `${part(8)}-${part(4)}-4${part(3)}-a${part(3)}-${part(12)}`;
}

function anyId(rng: Rng, known: string[]): string {
  return known.length > 0 && rng.chance(0.7) ? rng.pick(known) : uuid(rng);
}

function randomJson(rng: Rng, depth = 0): Json {
  switch (depth > 3 ? rng.int(4) : rng.int(6)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.int(1000) - 500;
    case 3:
      return "s".repeat(rng.int(40));
    case 4:
      return Array.from({ length: rng.int(4) }, () => randomJson(rng, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: rng.int(4) }, (_, i) => [`k${i}`, randomJson(rng, depth + 1)]),
      );
  }
}

/** A syntactically valid command line (which may still be refused). */
function validLine(rng: Rng, known: Known): string {
  const ws = () => anyId(rng, known.workspaces);
  const tab = () => anyId(rng, known.tabs);
  const block = () => anyId(rng, known.blocks);
  const name = () => `fz${rng.int(1000)}`;
  const pick = rng.int(24);
  const c: Json = (() => {
    switch (pick) {
      case 0:
        return null; // ping, written raw below to keep u64 digits
      case 1:
        return { cmd: "get_srv_snapshot" };
      case 2:
        return null; // get_events, raw below
      case 3:
        return { cmd: "get_server_info" };
      case 4:
        return { cmd: "create_workspace", name: name() };
      case 5:
        return { cmd: "rename_workspace", workspace_id: ws(), name: name() };
      case 6:
        return { cmd: "delete_workspace", workspace_id: ws(), force: rng.chance(0.5) };
      case 7:
        return { cmd: "create_tab", workspace_id: ws(), name: name() };
      case 8:
        return { cmd: "delete_tab", workspace_id: ws(), tab_id: tab(), force: rng.chance(0.5) };
      case 9:
        return { cmd: "rename_tab", tab_id: tab(), name: name() };
      case 10:
        return { cmd: "set_active_tab", workspace_id: ws(), tab_id: tab() };
      case 11:
        return { cmd: "reorder_tab", workspace_id: ws(), tab_id: tab(), new_index: rng.int(5) };
      case 12:
        return { cmd: "reorder_tabs_bulk", workspace_id: ws(), tab_ids: [tab(), tab()] };
      case 13:
        return {
          cmd: "move_tab",
          tab_id: tab(),
          src_workspace_id: ws(),
          dst_workspace_id: ws(),
          dst_index: rng.int(4),
        };
      case 14:
        return { cmd: "create_block", tab_id: tab(), meta: randomJson(rng) };
      case 15:
        return { cmd: "delete_block", tab_id: tab(), block_id: block() };
      case 16:
        return {
          cmd: "move_block",
          block_id: block(),
          src_tab_id: tab(),
          dst_tab_id: tab(),
          dst_index: rng.int(4),
        };
      case 17:
        return { cmd: "update_workspace_meta", workspace_id: ws(), meta_patch: randomJson(rng) };
      case 18:
        return { cmd: "update_tab_meta", tab_id: tab(), meta_patch: { a: randomJson(rng) } };
      case 19:
        return { cmd: "update_block_meta", block_id: block(), meta_patch: { b: randomJson(rng) } };
      case 20:
        return { cmd: rng.pick(["get_snapshot", "report_exit", "report_ready"]), x: 1 };
      case 21:
        return {
          cmd: "register",
          kind: rng.pick(["host", "renderer", "srv", "tool"]),
          pid: FUZZ_PID_BASE + rng.int(FUZZ_PID_COUNT),
          version: name(),
        };
      default:
        return { cmd: "ping", nonce: rng.int(1000), extra: randomJson(rng) };
    }
  })();
  if (pick === 0) return `{"cmd":"ping","nonce":${rng.u64()}}`;
  if (pick === 2) {
    return `{"cmd":"get_events","since":${rng.chance(0.5) ? rng.int(50) : rng.u64()}}`;
  }
  return JSON.stringify(c);
}

/** A line that parses badly in one way or another. */
function invalidLine(rng: Rng): string {
  switch (rng.int(12)) {
    case 0:
      return "{not json";
    case 1:
      return '{"cmd":"fly"}';
    case 2:
      return '{"cmd":"ping"}';
    case 3:
      return '{"cmd":"ping","nonce":"1"}';
    case 4:
      return '{"cmd":"ping","nonce":18446744073709551616}';
    case 5:
      return '{"cmd":"register","kind":"robot","pid":-1,"version":"x"}';
    case 6:
      return '{"cmd":"ping","nonce":1.5}';
    case 7:
      return rng.pick(["[]", "null", "42", '"str"', "{}", '{"cmd":null}']);
    case 8: {
      const depth = 1 + rng.int(1500);
      return '{"cmd":"create_block","tab_id":"x","meta":' + "[".repeat(depth) +
        "]".repeat(depth) + "}";
    }
    case 9:
      return '{"cmd":"create_workspace","name":"\\ud800"}';
    case 10:
      return "\u0000\u0001\u0002";
    default:
      return Array.from({ length: rng.int(80) }, () => String.fromCharCode(32 + rng.int(95)))
        .join("");
  }
}

/** What the fuzz clients did, for the report. */
export interface FuzzStats {
  connections: number;
  refused: number;
  lines: number;
  bytes: number;
  randomChunks: number;
  oversized: number;
  truncated: number;
  goodbyes: number;
  /** Connections srv closed under us (fatal error, eviction, goodbye). */
  closedBySrv: number;
}

interface FuzzConfig {
  socket: string;
  maxLineBytes: number;
  concurrency: number;
  until: number;
  rng: Rng;
  known: Known;
  stats: FuzzStats;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Reads and drops everything; resolves at the end of the stream. */
async function drain(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while ((await conn.read(buf)) !== null) { /* discard */ }
  } catch {
    // Reset or closed by us: the end either way.
  }
}

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/** One hostile client, start to end. */
async function fuzzClient(cfg: FuzzConfig, rng: Rng): Promise<void> {
  const { stats } = cfg;
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: cfg.socket });
  } catch {
    stats.refused++;
    return;
  }
  stats.connections++;
  const mode = rng.pick(["reader", "reader", "reader", "nonreader", "sleeper"] as const);
  const reading = mode === "reader" ? drain(conn) : null;
  const send = async (bytes: Uint8Array) => {
    // Sometimes split one line over several writes, to test reassembly.
    if (bytes.length > 4 && rng.chance(0.2)) {
      const cut = 1 + rng.int(bytes.length - 1);
      await writeAll(conn, bytes.subarray(0, cut));
      await tick();
      await writeAll(conn, bytes.subarray(cut));
    } else {
      await writeAll(conn, bytes);
    }
    stats.bytes += bytes.length;
  };
  try {
    if (rng.chance(0.6)) {
      await send(
        encoder.encode(
          `{"cmd":"register","kind":"tool","pid":${
            FUZZ_PID_BASE + rng.int(FUZZ_PID_COUNT)
          },"version":"fz"}\n`,
        ),
      );
      stats.lines++;
    }
    const actions = 1 + rng.int(40);
    for (let i = 0; i < actions && Date.now() < cfg.until; i++) {
      const roll = rng.int(100);
      if (roll < 45) {
        await send(encoder.encode(validLine(rng, cfg.known) + (rng.chance(0.1) ? "\r\n" : "\n")));
        stats.lines++;
      } else if (roll < 70) {
        await send(encoder.encode(invalidLine(rng) + "\n"));
        stats.lines++;
      } else if (roll < 82) {
        // Raw bytes: invalid UTF-8, stray newlines, NULs.
        await send(rng.bytes(1 + rng.int(300)));
        stats.randomChunks++;
      } else if (roll < 88) {
        await send(encoder.encode(rng.pick(["\n", "   \n", "\r\n", "\t\n"])));
      } else if (roll < 90) {
        // Longer than the cap: srv answers with a fatal error and closes.
        stats.oversized++;
        await send(encoder.encode(`{"cmd":"ping","pad":"${"o".repeat(cfg.maxLineBytes)}"}\n`));
        break;
      } else if (roll < 91) {
        stats.goodbyes++;
        await send(encoder.encode('{"cmd":"goodbye"}\n'));
        break;
      } else {
        await tick();
      }
    }
    if (mode === "sleeper") {
      // Hold the connection open without reading for a while: the queue
      // bound is what stops it growing (usually it is evicted meanwhile).
      const wake = Math.min(cfg.until, Date.now() + 200 + rng.int(1500));
      while (Date.now() < wake) await new Promise((r) => setTimeout(r, 50));
    }
    // Leave in one of the ways real clients leave.
    switch (rng.int(4)) {
      case 0:
        stats.truncated++;
        await send(encoder.encode('{"cmd":"create_workspace","na'));
        break;
      case 1:
        if (reading !== null) {
          await conn.closeWrite();
          await reading;
        }
        break;
      default:
        break; // just close
    }
  } catch {
    // srv closed the connection under us: a fatal error, eviction or goodbye.
    stats.closedBySrv++;
  } finally {
    conn.close();
    await reading;
  }
}

/** Runs `concurrency` hostile clients back to back until `until`. */
async function fuzzClients(cfg: FuzzConfig): Promise<void> {
  await Promise.all(
    Array.from({ length: cfg.concurrency }, async () => {
      const rng = cfg.rng.fork();
      while (Date.now() < cfg.until) await fuzzClient(cfg, rng.fork());
    }),
  );
}

/**
 * Registered as pid 1, sees every broadcast: versions must come one by one
 * with no gap, and per pid `process_spawned`/`process_exited` must
 * alternate. It also deletes the workspaces fuzz clients create, so a long
 * soak does not grow srv's state without bound.
 */
class Observer {
  readonly client: TestClient;
  readonly violations: string[] = [];
  readonly running = new Set<number>();
  spawned = 0;
  exited = 0;
  events = 0;
  #lastVersion = 0;
  #known: Known;
  #info: ((e: Json) => void)[] = [];
  #loop: Promise<void> | null = null;

  constructor(client: TestClient, known: Known) {
    this.client = client;
    this.#known = known;
  }

  async start(): Promise<void> {
    const events = await this.client.register(OBSERVER_PID, "tool", "observer");
    for (const e of events) this.#see(e);
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (true) {
      let e: Json;
      try {
        e = await this.client.next(60_000);
      } catch {
        return; // closed
      }
      this.#see(e);
    }
  }

  #see(e: Json): void {
    this.events++;
    if (e.version !== 0) {
      if (e.version !== this.#lastVersion + 1) {
        this.violations.push(`version ${e.version} after ${this.#lastVersion} (${e.event})`);
      }
      this.#lastVersion = e.version;
    }
    switch (e.event) {
      case "process_spawned":
        this.spawned++;
        if (this.running.has(e.pid)) this.violations.push(`pid ${e.pid} spawned twice`);
        this.running.add(e.pid);
        break;
      case "process_exited":
        this.exited++;
        if (!this.running.delete(e.pid)) {
          this.violations.push(`pid ${e.pid} exited without running (a second process_exited)`);
        }
        break;
      case "workspace_created":
        if (!String(e.name).startsWith("good-")) {
          this.#known.add(this.#known.workspaces, e.workspace_id);
          // Janitor: keep the state bounded however long the soak runs.
          this.client.send({ cmd: "delete_workspace", workspace_id: e.workspace_id, force: true })
            .catch(() => {});
        }
        break;
      case "tab_created":
        this.#known.add(this.#known.tabs, e.tab_id);
        break;
      case "block_created":
        this.#known.add(this.#known.blocks, e.block_id);
        break;
      case "server_info":
        this.#info.shift()?.(e);
        break;
    }
  }

  /** srv's own count of open connections. */
  async connections(): Promise<number> {
    const answer = new Promise<Json>((resolve) => this.#info.push(resolve));
    await this.client.send({ cmd: "get_server_info" });
    return (await answer).connections;
  }

  async stop(): Promise<void> {
    await this.client.dispose();
    await this.#loop;
  }
}

/**
 * Registered as pid 2: pings with random u64 nonces, and creates, renames,
 * reads back and deletes its own workspace, checking every answer while the
 * fuzz runs.
 */
class WellBehaved {
  readonly client: TestClient;
  readonly violations: string[] = [];
  roundTrips = 0;
  #lastVersion = 0;

  constructor(client: TestClient) {
    this.client = client;
  }

  /** The next event satisfying `match`, checking the order of all before it. */
  async #until(match: (e: Json) => boolean): Promise<Json> {
    while (true) {
      const e = await this.client.next();
      if (e.event === "event_list") {
        // It carries the current version without taking a new one (§6).
        if (e.version < this.#lastVersion) {
          this.violations.push(`event_list version ${e.version} below ${this.#lastVersion}`);
        }
      } else if (e.version !== 0) {
        if (e.version <= this.#lastVersion) {
          this.violations.push(`version ${e.version} not above ${this.#lastVersion}`);
        }
        this.#lastVersion = e.version;
      }
      if (match(e)) return e;
    }
  }

  async run(rng: Rng, until: number, srvPid: number): Promise<void> {
    for (const e of await this.client.register(GOOD_PID, "host", "good")) {
      this.#lastVersion = Math.max(this.#lastVersion, e.version);
    }
    let n = 0;
    while (Date.now() < until) {
      n++;
      // Pace ourselves: the hostile clients share this process and should
      // get most of it; the point is checking answers throughout.
      await new Promise((r) => setTimeout(r, 5));
      const nonce = rng.u64();
      await this.client.send(`{"cmd":"ping","nonce":${nonce}}`);
      const pong = await this.#until((e) => e.event === "pong" && String(e.nonce) === nonce);
      if (pong.version === 0) this.violations.push("pong with version 0");
      this.roundTrips++;
      if (n % 5 === 0) {
        await this.client.send({ cmd: "get_server_info" });
        const info = await this.#until((e) => e.event === "server_info");
        if (info.pid !== srvPid || info.version !== 0) {
          this.violations.push(`bad server_info ${JSON.stringify(info)}`);
        }
        this.roundTrips++;
      }
      if (n % 7 === 0) {
        const name = `good-${n}`;
        await this.client.send({ cmd: "create_workspace", name });
        const created = await this.#until((e) =>
          e.event === "workspace_created" && e.name === name
        );
        await this.client.send({
          cmd: "rename_workspace",
          workspace_id: created.workspace_id,
          name: `${name}-r`,
        });
        const renamed = await this.#until((e) =>
          e.event === "workspace_renamed" && e.workspace_id === created.workspace_id
        );
        await this.client.send({ cmd: "get_events", since: created.version - 1 });
        const list = await this.#until((e) => e.event === "event_list");
        const versions = (list.events as Json[]).map((e) => e.version);
        if (versions[0] !== created.version || !versions.includes(renamed.version)) {
          this.violations.push(
            `event_list since ${
              created.version - 1
            } lacks our events (truncated=${list.truncated}, ` +
              `${versions.length} events from v${versions[0]}; ours v${created.version}, ` +
              `v${renamed.version})`,
          );
        }
        if (list.version < renamed.version) this.violations.push("event_list version went back");
        await this.client.send({
          cmd: "delete_workspace",
          workspace_id: created.workspace_id,
          force: true,
        });
        await this.#until((e) =>
          e.event === "workspace_deleted" && e.workspace_id === created.workspace_id
        );
        this.roundTrips += 4;
      }
    }
  }
}

/** Everything a campaign measured and every rule it saw broken. */
export interface CampaignReport {
  seed: number;
  durationMs: number;
  stats: FuzzStats;
  roundTrips: number;
  observedEvents: number;
  spawned: number;
  exited: number;
  evictions: number;
  fatalCloses: number;
  /** Connections refused by --max-connections. */
  capRefusals: number;
  peakRss: number;
  startRss: number;
  endRss: number;
  /** Empty when srv held up. */
  violations: string[];
}

/**
 * Runs the campaign against a live srv: hostile clients plus observer and
 * well-behaved client for `durationMs`, then checks that every registered
 * connection that went away yielded exactly one `process_exited`, that srv
 * is back to two connections and two client sockets, and that its
 * log holds no crash or internal error.
 */
export async function runCampaign(
  srv: SrvProcess,
  options: {
    seed: number;
    durationMs: number;
    concurrency: number;
    maxLineBytes: number;
    onProgress?: (report: CampaignReport) => void;
  },
): Promise<CampaignReport> {
  const rng = new Rng(options.seed);
  const known = new Known();
  const stats: FuzzStats = {
    connections: 0,
    refused: 0,
    lines: 0,
    bytes: 0,
    randomChunks: 0,
    oversized: 0,
    truncated: 0,
    goodbyes: 0,
    closedBySrv: 0,
  };
  const started = Date.now();
  const until = started + options.durationMs;
  let srvGone = false;
  srv.child.status.then(() => (srvGone = true));

  const observer = new Observer(await TestClient.connect(srv.socket), known);
  await observer.start();
  const good = new WellBehaved(await TestClient.connect(srv.socket));
  const startRss = rssBytes(srv.pid);
  const report: CampaignReport = {
    seed: options.seed,
    durationMs: 0,
    stats,
    roundTrips: 0,
    observedEvents: 0,
    spawned: 0,
    exited: 0,
    evictions: 0,
    fatalCloses: 0,
    capRefusals: 0,
    peakRss: startRss,
    startRss,
    endRss: startRss,
    violations: [],
  };
  const update = () => {
    report.durationMs = Date.now() - started;
    report.roundTrips = good.roundTrips;
    report.observedEvents = observer.events;
    report.spawned = observer.spawned;
    report.exited = observer.exited;
    const log = srv.stderr();
    report.evictions = (log.match(/closed: "?evicted/g) ?? []).length;
    report.fatalCloses = (log.match(/closed: "?fatal/g) ?? []).length;
    report.capRefusals = (log.match(/refused connection/g) ?? []).length;
    if (!srvGone) {
      report.endRss = rssBytes(srv.pid);
      report.peakRss = Math.max(report.peakRss, report.endRss);
    }
  };
  let lastProgress = Date.now();
  const sampler = setInterval(() => {
    update();
    if (options.onProgress && Date.now() - lastProgress >= 10_000) {
      lastProgress = Date.now();
      options.onProgress(report);
    }
  }, 200);
  try {
    const cfg: FuzzConfig = {
      socket: srv.socket,
      maxLineBytes: options.maxLineBytes,
      concurrency: options.concurrency,
      until,
      rng: rng.fork(),
      known,
      stats,
    };
    await Promise.all([fuzzClients(cfg), good.run(rng.fork(), until, srv.pid)]);
    if (srvGone) throw new Error(`srv exited during the fuzz: ${srv.stderr().slice(-2000)}`);

    // Every hostile connection is gone on our side; wait for srv to agree.
    // Its synthetic goodbyes go out before it stops counting a connection,
    // so by then the observer has every process_exited.
    await waitUntil("srv holds only the observer and the good client", async () => {
      return await observer.connections() === 2;
    }, 30_000);
    // And its descriptors: closed connections' sockets are really closed
    // (a refused or evicted one included), leaving exactly those two.
    await waitUntil(
      "srv holds exactly two client sockets",
      () => connectionSocketCount(srv.pid, srv.socket) === 2,
      30_000,
    );
    update();
  } finally {
    clearInterval(sampler);
    await good.client.dispose();
    await observer.stop();
  }

  const v = report.violations;
  v.push(...observer.violations, ...good.violations);
  const stillRunning = [...observer.running].filter((pid) => pid >= FUZZ_PID_BASE);
  if (stillRunning.length > 0) {
    v.push(`gone connections left pids running (no process_exited): ${stillRunning.join(",")}`);
  }
  const fuzzSpawned = report.spawned - 2; // observer and good client are still registered
  if (fuzzSpawned !== report.exited) {
    v.push(`${fuzzSpawned} fuzz registrations but ${report.exited} process_exited`);
  }
  if (good.roundTrips === 0) v.push("the well-behaved client got no answer");
  const log = srv.stderr();
  for (const bad of [/Uncaught/, /internal error/, /\n\s+at /, /\[ERR\]/]) {
    if (bad.test(log)) v.push(`srv log matches ${bad}: ${log.slice(log.search(bad), 2000)}`);
  }
  return report;
}

/** One line per figure, for the soak and the test output. */
export function formatReport(r: CampaignReport): string {
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  return [
    `seed ${r.seed} (SRV_FUZZ_SEED=${r.seed} to replay the inputs)`,
    `duration ${(r.durationMs / 1000).toFixed(1)} s`,
    `connections ${r.stats.connections} (refused at connect ${r.stats.refused}, closed by srv ${r.stats.closedBySrv})`,
    `commands ${r.stats.lines} lines + ${r.stats.randomChunks} random chunks, ${
      mib(r.stats.bytes)
    } sent; oversized ${r.stats.oversized}, truncated ${r.stats.truncated}, goodbyes ${r.stats.goodbyes}`,
    `well-behaved round trips ${r.roundTrips}; observer saw ${r.observedEvents} events`,
    `registrations ${r.spawned} / process_exited ${r.exited}`,
    `evictions ${r.evictions}; fatal closes ${r.fatalCloses}; refused by the connection cap ${r.capRefusals}`,
    `srv RSS start ${mib(r.startRss)}, peak ${mib(r.peakRss)}, end ${mib(r.endRss)}`,
    r.violations.length === 0 ? "no violations" : `VIOLATIONS:\n  ${r.violations.join("\n  ")}`,
  ].join("\n");
}
