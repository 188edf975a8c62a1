/**
 * The load process: drives one target (srv, the echo baseline or Redis) for
 * one phase and prints one JSON object on stdout. It runs apart from the
 * orchestrator so the orchestrator's bookkeeping never competes with the
 * measured loop, and it stays lean (closed-loop pipelining, no per-event
 * parsing on the hot path) because srv, this process and the peer share
 * the machine's cores.
 *
 * Usage: `deno run -A bench/load.ts '<LoadConfig as JSON>'` (Deno asks for `--allow-all`
 * to read `/proc/<pid>`, where CPU time and RSS come from).
 *
 * @module
 */

import { randomNonce, seededRandom } from "./_rng.ts";

/** Which server a load process talks to. */
export type TargetKind = "srv" | "echo" | "redis";

/** What a load process measures. */
export type Phase = "rtt" | "pipeline" | "fanout" | "catchup" | "idle" | "tree";

/**
 * What the fan-out writer sends: `ping` (srv: broadcast pong; Redis:
 * PUBLISH), or `meta`, the workload hosts run (issue 16): srv
 * `update_block_meta` of a terminal's title and cwd; Redis `HSET` of the
 * same fields plus `PUBLISH` of the same event JSON srv broadcasts.
 */
export type FanoutOp = "ping" | "meta";

/** Everything one load process needs, passed as one JSON argument. */
export interface LoadConfig {
  phase: Phase;
  target: TargetKind;
  socket: string;
  seed: number;
  /** Hard deadline for the whole process; past it, it reports a timeout and exits. */
  deadlineMs: number;
  /** rtt: unmeasured requests first, then measured ones. */
  warmup?: number;
  samples?: number;
  /** pipeline, fanout: commands per write, warm-up and measured window. */
  batch?: number;
  warmupMs?: number;
  windowMs?: number;
  /** fanout: reading connections besides the writer. */
  subscribers?: number;
  /** fanout: batches the writer may be ahead of the slowest reader. */
  ahead?: number;
  /** fanout: what the writer sends (default ping). */
  op?: FanoutOp;
  /** tree: commands per measured step (after as many again as warm-up). */
  steps?: number;
  /** catchup: pings to send before timing `get_events{since:0}`; tree: blocks in the full tab. */
  fill?: number;
  /** idle: connections to open and register. */
  connections?: number;
  /** The server's pid: its CPU use (all phases) and RSS (idle) come from /proc. */
  pid?: number;
  settleMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LF = 0x0a;
/** Distinct pre-encoded requests or batches cycled through, so nothing is built in the loop. */
const VARIANTS = 16;
/** First pid this process registers with; every connection gets its own. */
const PID_BASE = 1_000_000;

let stage = "start";

function emit(result: Record<string, unknown>): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(result) + "\n"));
}

/**
 * Newlines in `bytes`, four bytes at a time (SWAR): the readers' hot path,
 * about twice as fast as a byte loop or `indexOf` per line, so the load
 * process is less often the bottleneck.
 */
function countLf(bytes: Uint8Array): number {
  let n = 0;
  let i = 0;
  if ((bytes.byteOffset & 3) === 0) {
    const words = bytes.length >>> 2;
    const w32 = new Int32Array(bytes.buffer, bytes.byteOffset, words);
    for (let w = 0; w < words; w++) {
      const x = w32[w] ^ 0x0a0a0a0a;
      const zero = ~((((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x) | 0x7f7f7f7f);
      n += Math.imul((zero >>> 7) & 0x01010101, 0x01010101) >>> 24;
    }
    i = words << 2;
  }
  for (; i < bytes.length; i++) if (bytes[i] === LF) n++;
  return n;
}

/** CPU time (user + system) of a process so far, in ms, from /proc. */
function cpuMs(pid: number | "self"): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid === "self" ? Deno.pid : pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat(5) (utime, stime) in clock ticks (100 Hz on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** CPU use of the server and of this process over a window, in % of one core. */
function cpuMeter(
  serverPid: number | undefined,
): () => { server_cpu: number | null; load_cpu: number | null } {
  const t0 = performance.now();
  const s0 = serverPid === undefined ? NaN : cpuMs(serverPid);
  const l0 = cpuMs("self");
  return () => {
    const dt = performance.now() - t0;
    const s1 = serverPid === undefined ? NaN : cpuMs(serverPid);
    const pct = (x: number) => (Number.isFinite(x) ? Math.round((x * 100) / dt) : null);
    return {
      server_cpu: pct(s1 - s0),
      load_cpu: pct(cpuMs("self") - l0),
    };
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function connect(path: string): Promise<Deno.UnixConn> {
  return await Deno.connect({ transport: "unix", path });
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

// ---------------------------------------------------------------------------
// Wire formats

function srvRegister(pid: number): Uint8Array {
  return encoder.encode(`{"cmd":"register","kind":"tool","pid":${pid},"version":"bench"}\n`);
}

function pingLine(nonce: number): string {
  return `{"cmd":"ping","nonce":${nonce}}\n`;
}

function resp(...args: string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${encoder.encode(a).length}\r\n${a}\r\n`;
  return out;
}

/** One request of `target` and the check of its reply line (without `\n`, `\r` kept). */
interface Request {
  bytes: Uint8Array;
  check: (line: string) => boolean;
}

function makeRequest(target: TargetKind, next: () => number): Request {
  if (target === "redis") {
    return { bytes: encoder.encode(resp("PING")), check: (l) => l === "+PONG\r" };
  }
  const nonce = randomNonce(next);
  const line = pingLine(nonce);
  if (target === "echo") {
    return { bytes: encoder.encode(line), check: (l) => l + "\n" === line };
  }
  const prefix = `{"event":"pong","nonce":${nonce},`;
  return { bytes: encoder.encode(line), check: (l) => l.startsWith(prefix) };
}

/** `size` requests in one buffer, and the check of the last reply. */
function makeBatch(target: TargetKind, size: number, next: () => number): Request {
  const parts: Request[] = [];
  for (let i = 0; i < size; i++) parts.push(makeRequest(target, next));
  const total = parts.reduce((n, p) => n + p.bytes.length, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    bytes.set(p.bytes, offset);
    offset += p.bytes.length;
  }
  return { bytes, check: parts[parts.length - 1].check };
}

// ---------------------------------------------------------------------------
// A connection read in lock step with what was sent (rtt, pipeline, catchup)

class Wire {
  readonly conn: Deno.UnixConn;
  #buf: Uint8Array;
  #last: Uint8Array = new Uint8Array(0);
  /** Whether the last chunk began at a line boundary. */
  #lastStartsLine = true;
  #endedLine = true;
  /** Lines read past what was waited for (0 in a closed loop). */
  #surplus = 0;
  #text = "";

  constructor(conn: Deno.UnixConn, bufferBytes = 64 * 1024) {
    this.conn = conn;
    this.#buf = new Uint8Array(bufferBytes);
  }

  write(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** Reads until `n` more newlines arrived. */
  async awaitLines(n: number): Promise<void> {
    let seen = this.#surplus;
    while (seen < n) {
      const got = await this.conn.read(this.#buf);
      if (got === null) throw new Error("server closed the connection");
      this.#last = this.#buf.subarray(0, got);
      this.#lastStartsLine = this.#endedLine;
      this.#endedLine = this.#last[got - 1] === LF;
      seen += countLf(this.#last);
    }
    this.#surplus = seen - n;
  }

  /** The last complete line of the last chunk, if it lies wholly in that chunk. */
  lastLine(): string | null {
    const end = this.#last.lastIndexOf(LF);
    if (end < 0) return null;
    const start = end === 0 ? -1 : this.#last.lastIndexOf(LF, end - 1);
    if (start < 0 && !this.#lastStartsLine) return null;
    return decoder.decode(this.#last.subarray(start + 1, end));
  }

  /** Setup only: the next line as text (slow path, buffers partial lines). */
  async nextLine(): Promise<string> {
    while (true) {
      const i = this.#text.indexOf("\n");
      if (i >= 0) {
        const line = this.#text.slice(0, i);
        this.#text = this.#text.slice(i + 1);
        return line;
      }
      const got = await this.conn.read(this.#buf);
      if (got === null) throw new Error("server closed the connection during setup");
      this.#text += decoder.decode(this.#buf.subarray(0, got), { stream: true });
    }
  }

  /** Setup only: reads lines until one matches. */
  async waitLine(match: (line: string) => boolean): Promise<string> {
    while (true) {
      const line = await this.nextLine();
      if (match(line)) return line;
    }
  }

  /** True when setup left no partial or unread line behind. */
  get settled(): boolean {
    return this.#text.length === 0 && this.#surplus === 0;
  }

  /** Reads one (possibly huge) line; returns its bytes and, when asked, its text. */
  async readLongLine(keep: boolean): Promise<{ bytes: number; text: string | null }> {
    const parts: Uint8Array[] = [];
    let bytes = 0;
    while (true) {
      const got = await this.conn.read(this.#buf);
      if (got === null) throw new Error("server closed the connection");
      const chunk = this.#buf.subarray(0, got);
      bytes += got;
      if (keep) parts.push(chunk.slice());
      const lf = chunk.indexOf(LF);
      if (lf >= 0) {
        if (lf !== got - 1) throw new Error("unexpected bytes after the long line");
        break;
      }
    }
    if (!keep) return { bytes, text: null };
    const all = new Uint8Array(bytes);
    let offset = 0;
    for (const p of parts) {
      all.set(p, offset);
      offset += p.length;
    }
    return { bytes, text: decoder.decode(all.subarray(0, bytes - 1)) };
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function registerSrv(wire: Wire, pid: number): Promise<void> {
  await wire.write(srvRegister(pid));
  await wire.waitLine((l) => l.includes('"event":"registered"'));
  if (!wire.settled) throw new Error("unexpected lines after registered");
}

async function openWire(config: LoadConfig, pid: number, bufferBytes?: number): Promise<Wire> {
  const wire = new Wire(await connect(config.socket), bufferBytes);
  if (config.target === "srv") await registerSrv(wire, pid);
  return wire;
}

// ---------------------------------------------------------------------------
// Phases

/** One client, one request in flight: latency per round trip. */
async function roundTrip(config: LoadConfig): Promise<Record<string, unknown>> {
  const next = seededRandom(config.seed);
  const warmup = config.warmup ?? 1000;
  const samples = config.samples ?? 10000;
  const requests = Array.from({ length: 256 }, () => makeRequest(config.target, next));
  stage = "rtt setup";
  const wire = await openWire(config, PID_BASE);
  const times = new Float64Array(samples);
  let unchecked = 0;
  stage = "rtt loop";
  let cpu = cpuMeter(config.pid);
  for (let i = 0; i < warmup + samples; i++) {
    const req = requests[i & 255];
    const t0 = performance.now();
    await wire.write(req.bytes);
    await wire.awaitLines(1);
    const dt = performance.now() - t0;
    if (i >= warmup) times[i - warmup] = dt;
    if (i === warmup - 1) cpu = cpuMeter(config.pid);
    const line = wire.lastLine();
    if (line === null) unchecked++;
    else if (!req.check(line)) throw new Error(`unexpected reply: ${line.slice(0, 200)}`);
  }
  const usage = cpu();
  wire.close();
  const sorted = [...times].sort((a, b) => a - b);
  const us = (ms: number) => Math.round(ms * 1000 * 10) / 10;
  return {
    ...usage,
    p50_us: us(percentile(sorted, 50)),
    p99_us: us(percentile(sorted, 99)),
    mean_us: us(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    samples,
    warmup,
    unchecked,
  };
}

/** One client, batches of `batch` commands, one batch in flight: commands per second. */
async function pipelined(config: LoadConfig): Promise<Record<string, unknown>> {
  const next = seededRandom(config.seed);
  const batch = config.batch ?? 64;
  const batches = Array.from({ length: VARIANTS }, () => makeBatch(config.target, batch, next));
  stage = "pipeline setup";
  const wire = await openWire(config, PID_BASE);
  const once = async (k: number) => {
    await wire.write(batches[k % VARIANTS].bytes);
    await wire.awaitLines(batch);
  };
  const times: number[] = [];
  stage = "pipeline warm-up";
  let k = 0;
  const warmEnd = performance.now() + (config.warmupMs ?? 1000);
  while (performance.now() < warmEnd) await once(k++);
  stage = "pipeline window";
  const windowMs = config.windowMs ?? 3000;
  const cpu = cpuMeter(config.pid);
  const t0 = performance.now();
  let done = 0;
  let now = t0;
  while (now - t0 < windowMs) {
    const b0 = now;
    await once(k++);
    done++;
    now = performance.now();
    times.push(now - b0);
  }
  const elapsed = now - t0;
  const usage = cpu();
  times.sort((a, b) => a - b);
  const line = wire.lastLine();
  const last = batches[(k - 1) % VARIANTS];
  if (line !== null && !last.check(line)) {
    throw new Error(`unexpected last reply: ${line.slice(0, 200)}`);
  }
  wire.close();
  return {
    per_s: Math.round((done * batch * 1000) / elapsed),
    batch_p50_us: Math.round(percentile(times, 50) * 1000),
    batch_p99_us: Math.round(percentile(times, 99) * 1000),
    ...usage,
    commands: done * batch,
    batch,
    window_ms: Math.round(elapsed),
  };
}

/**
 * A connection read by a pump: first line by line (setup), then, from the
 * line that matches `marker` on, only counted: newlines (srv: one per
 * event), or bytes (Redis: every pub/sub message has the same size, and
 * counting its seven CRLFs would make this process the bottleneck).
 */
class Tap {
  readonly conn: Deno.UnixConn;
  /** Units per delivered message: 1 line, or the byte size of one message. */
  readonly perMessage: number;
  readonly unit: "lines" | "bytes";
  units = 0;
  counting: boolean;
  marker: ((line: string) => boolean) | null = null;
  reached = false;
  closed = false;
  onProgress: (tap: Tap) => void = () => {};
  onClose: (tap: Tap) => void = () => {};
  readonly done: Promise<void>;
  #lines: string[] = [];
  #partial = "";
  #wake: (() => void) | null = null;
  #marked = Promise.withResolvers<void>();

  constructor(
    conn: Deno.UnixConn,
    counting: boolean,
    unit: "lines" | "bytes" = "lines",
    perMessage = 1,
  ) {
    this.conn = conn;
    this.perMessage = perMessage;
    this.unit = unit;
    this.counting = counting;
    this.done = this.#pump();
  }

  get delivered(): number {
    return Math.floor(this.units / this.perMessage);
  }

  /** Resolves once the marker line arrived. */
  get marked(): Promise<void> {
    return this.#marked.promise;
  }

  async #pump(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        if (this.counting) {
          this.units += this.unit === "bytes" ? n : countLf(chunk);
          this.onProgress(this);
        } else {
          this.#setup(decoder.decode(chunk, { stream: true }));
        }
      }
    } catch {
      // Closed under us; reported below.
    }
    this.closed = true;
    this.#wake?.();
    this.onClose(this);
  }

  #setup(text: string): void {
    let rest = this.#partial + text;
    this.#partial = "";
    while (true) {
      const i = rest.indexOf("\n");
      if (i < 0) break;
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      if (this.marker !== null && this.marker(line.replace(/\r$/, ""))) {
        this.counting = true;
        this.units += this.unit === "bytes"
          ? encoder.encode(rest).length
          : countLf(encoder.encode(rest));
        this.#marked.resolve();
        this.onProgress(this);
        return;
      }
      this.#lines.push(line);
    }
    this.#partial = rest;
    if (this.#lines.length > 0) this.#wake?.();
  }

  async waitLine(match: (line: string) => boolean): Promise<string> {
    while (true) {
      while (this.#lines.length > 0) {
        const line = this.#lines.shift()!;
        if (match(line)) return line;
      }
      if (this.closed) throw new Error("connection closed during setup");
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Resolves when every tap has delivered at least a threshold; fails if one closes. */
class Gate {
  readonly taps: Tap[];
  #threshold = 0;
  #below = 0;
  #waiter: PromiseWithResolvers<void> | null = null;
  failure: Error | null = null;

  constructor(taps: Tap[]) {
    this.taps = taps;
    for (const tap of taps) {
      tap.onProgress = (t) => this.#progress(t);
      tap.onClose = () => this.#fail(new Error("a connection was closed by the server (evicted?)"));
    }
  }

  /** Null when already satisfied, else a promise. */
  waitAll(threshold: number): Promise<void> | null {
    if (this.failure) return Promise.reject(this.failure);
    this.#threshold = threshold;
    let below = 0;
    for (const tap of this.taps) {
      tap.reached = tap.delivered >= threshold;
      if (!tap.reached) below++;
    }
    this.#below = below;
    if (below === 0) return null;
    this.#waiter = Promise.withResolvers<void>();
    return this.#waiter.promise;
  }

  #progress(tap: Tap): void {
    if (this.#waiter === null || tap.reached || tap.delivered < this.#threshold) return;
    tap.reached = true;
    if (--this.#below === 0) {
      const w = this.#waiter;
      this.#waiter = null;
      w.resolve();
    }
  }

  #fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.#waiter?.reject(error);
    this.#waiter = null;
  }
}

/** The meta patch of the workload: a terminal's title and cwd (fixed width, so sizes match). */
function metaPatch(next: () => number): string {
  const n = 10000 + Math.floor(next() * 90000);
  return `{"title":"~/src/project ${n}","cwd":"/home/user/src/project","n":${n}}`;
}

/** Blocks the `meta` workload spreads its updates over (a host's terminals). */
const META_BLOCKS = 64;

/**
 * srv setup of the `meta` workload: a workspace, a tab and
 * {@linkcode META_BLOCKS} blocks, created through `tap` (registered).
 */
async function createBlocks(tap: Tap | Wire, count: number): Promise<string[]> {
  const idOf = (line: string, field: string) => {
    const m = line.match(new RegExp(`"${field}":"([^"]+)"`));
    if (!m) throw new Error(`no ${field} in ${line.slice(0, 200)}`);
    return m[1];
  };
  await tap.write(encoder.encode(`{"cmd":"create_workspace","name":"bench"}\n`));
  const ws = idOf(await tap.waitLine((l) => l.includes('"workspace_created"')), "workspace_id");
  await tap.write(encoder.encode(`{"cmd":"create_tab","workspace_id":"${ws}","name":"t"}\n`));
  const tab = idOf(await tap.waitLine((l) => l.includes('"tab_created"')), "tab_id");
  const ids: string[] = [];
  let text = "";
  for (let i = 0; i < count; i++) text += `{"cmd":"create_block","tab_id":"${tab}","meta":{}}\n`;
  await tap.write(encoder.encode(text));
  while (ids.length < count) {
    ids.push(idOf(await tap.waitLine((l) => l.includes('"block_created"')), "block_id"));
  }
  return ids;
}

/**
 * One writer, `subscribers` readers (none is allowed: then only the writer
 * reads, and this is the pipelined rate of `op`). srv: registered
 * connections; the writer's command is broadcast to every connection.
 * Redis: SUBSCRIBE and PUBLISH on one channel (`meta`: an HSET before each
 * PUBLISH). The writer keeps at most `ahead` batches ahead of the slowest
 * reader (closed loop: nobody is evicted, nothing piles up), and only
 * deliveries to readers inside the window are counted.
 */
async function fanout(config: LoadConfig): Promise<Record<string, unknown>> {
  const next = seededRandom(config.seed);
  const batch = config.batch ?? 64;
  const n = config.subscribers ?? 10;
  const op = config.op ?? "ping";
  const redis = config.target === "redis";
  const channel = "bench";
  const subs: Tap[] = [];
  let writer: Tap;
  let batches: Uint8Array[];
  stage = "fanout setup";
  if (redis) {
    // Fixed-width digits: every payload, hence every message, has the same size.
    const version = () => 1_000_000 + Math.floor(next() * 8_000_000);
    const blockIds = Array.from({ length: META_BLOCKS }, () => crypto.randomUUID());
    // The line srv broadcasts for the same command, byte for byte in size.
    const metaEvent = (id: string, patch: string) =>
      `{"event":"block_meta_updated","block_id":"${id}","meta_patch":${patch},"version":${version()}}`;
    const payload = () =>
      op === "meta"
        ? metaEvent(blockIds[0], metaPatch(next))
        : `{"event":"pong","nonce":${1e12 + Math.floor(next() * 8e12)},"version":${
          100000 + Math.floor(next() * 800000)
        }}`;
    const messageBytes = encoder.encode(resp("message", channel, payload())).length;
    for (let i = 0; i < n; i++) {
      const tap = new Tap(await connect(config.socket), false, "bytes", messageBytes);
      tap.marker = (l) => l === ":1";
      await tap.write(encoder.encode(resp("SUBSCRIBE", channel)));
      await tap.marked;
      subs.push(tap);
    }
    // meta: two replies (HSET, PUBLISH) per command.
    writer = new Tap(await connect(config.socket), true, "lines", op === "meta" ? 2 : 1);
    batches = Array.from({ length: VARIANTS }, () => {
      let text = "";
      for (let i = 0; i < batch; i++) {
        if (op === "ping") {
          // A payload the size of srv's pong line, so both move about the same bytes.
          text += resp("PUBLISH", channel, payload());
          continue;
        }
        const id = blockIds[Math.floor(next() * META_BLOCKS)];
        const n5 = 10000 + Math.floor(next() * 90000);
        const patch = `{"title":"~/src/project ${n5}","cwd":"/home/user/src/project","n":${n5}}`;
        text += resp(
          "HSET",
          `block:${id}`,
          "title",
          `~/src/project ${n5}`,
          "cwd",
          "/home/user/src/project",
          "n",
          String(n5),
        );
        text += resp("PUBLISH", channel, metaEvent(id, patch));
      }
      return encoder.encode(text);
    });
  } else {
    const open = async (pid: number) => {
      const tap = new Tap(await connect(config.socket), false);
      await tap.write(srvRegister(pid));
      await tap.waitLine((l) => l.includes('"event":"registered"'));
      return tap;
    };
    writer = await open(PID_BASE);
    const blockIds = op === "meta" ? await createBlocks(writer, META_BLOCKS) : [];
    for (let i = 0; i < n; i++) subs.push(await open(PID_BASE + 1 + i));
    // Every connection switches to counting at the pong of one marker ping.
    const mark = randomNonce(next);
    for (const tap of [...subs, writer]) tap.marker = (l) => l.includes(`"nonce":${mark},`);
    await writer.write(encoder.encode(pingLine(mark)));
    await Promise.all([...subs, writer].map((t) => t.marked));
    batches = Array.from({ length: VARIANTS }, () => {
      if (op === "ping") return makeBatch("srv", batch, next).bytes;
      let text = "";
      for (let i = 0; i < batch; i++) {
        const id = blockIds[Math.floor(next() * META_BLOCKS)];
        text += `{"cmd":"update_block_meta","block_id":"${id}","meta_patch":${metaPatch(next)}}\n`;
      }
      return encoder.encode(text);
    });
  }
  const gate = new Gate([...subs, writer]);
  const ahead = (config.ahead ?? 4) * batch;
  let sent = 0;
  let stop = false;
  const sum = () => subs.reduce((s, t) => s + t.delivered, 0);
  stage = "fanout warm-up";
  const writing = (async () => {
    let k = 0;
    while (!stop) {
      const wait = gate.waitAll(sent - ahead);
      if (wait !== null) await wait;
      if (stop) break;
      await writer.write(batches[k++ % VARIANTS]);
      sent += batch;
    }
  })();
  const windowMs = config.windowMs ?? 3000;
  await Promise.race([sleep(config.warmupMs ?? 1000), writing]);
  stage = "fanout window";
  const s0 = sum();
  const sent0 = sent;
  const writerDone0 = writer.delivered;
  const cpu = cpuMeter(config.pid);
  const t0 = performance.now();
  await Promise.race([sleep(windowMs), writing]);
  const s1 = sum();
  const sent1 = sent;
  const writerDone1 = writer.delivered;
  const elapsed = performance.now() - t0;
  const usage = cpu();
  stop = true;
  await writing;
  stage = "fanout drain";
  const drained = gate.waitAll(sent);
  if (drained !== null) await drained;
  for (const tap of [...subs, writer]) tap.close();
  await Promise.allSettled([...subs, writer].map((t) => t.done));
  return {
    per_s: Math.round(((s1 - s0) * 1000) / elapsed),
    writer_per_s: Math.round(((sent1 - sent0) * 1000) / elapsed),
    // Commands the server finished in the window: what the writer got back.
    commands_per_s: Math.round(((writerDone1 - writerDone0) * 1000) / elapsed),
    op,
    ...usage,
    subscribers: n,
    deliveries: s1 - s0,
    batch,
    window_ms: Math.round(elapsed),
  };
}

/** Pipelined `lines` (one batch of `batch` in flight), `steps` of them: commands per second. */
async function timedSteps(
  wire: Wire,
  batches: Uint8Array[],
  batch: number,
  steps: number,
  expect: string,
): Promise<number> {
  const t0 = performance.now();
  for (let done = 0, k = 0; done < steps; done += batch, k++) {
    await wire.write(batches[k % batches.length]);
    await wire.awaitLines(batch);
  }
  const elapsed = performance.now() - t0;
  const line = wire.lastLine();
  if (line !== null && !line.includes(`"event":"${expect}"`)) {
    throw new Error(`expected ${expect}, got: ${line.slice(0, 200)}`);
  }
  return Math.round((steps * 1000) / elapsed);
}

/**
 * srv only (issue 16 item 3): the cost of `create_block` and `move_block`
 * as a tab grows. One tab holds `fill` blocks, one starts empty, one holds
 * 64; each step runs `steps` commands as warm-up, then `steps` measured,
 * pipelined in batches. Same server, same tree size for both sides of each
 * ratio, so only the tab's size differs.
 */
async function tree(config: LoadConfig): Promise<Record<string, unknown>> {
  const next = seededRandom(config.seed);
  const fill = config.fill ?? 50_000;
  const steps = config.steps ?? 4096;
  const batch = config.batch ?? 64;
  stage = "tree setup";
  const wire = await openWire(config, PID_BASE);
  const idOf = (line: string, field: string) => {
    const m = line.match(new RegExp(`"${field}":"([^"]+)"`));
    if (!m) throw new Error(`no ${field} in ${line.slice(0, 200)}`);
    return m[1];
  };
  await wire.write(encoder.encode(`{"cmd":"create_workspace","name":"bench"}\n`));
  const ws = idOf(await wire.waitLine((l) => l.includes('"workspace_created"')), "workspace_id");
  const tabs: string[] = [];
  for (const name of ["full", "empty", "small"]) {
    await wire.write(
      encoder.encode(`{"cmd":"create_tab","workspace_id":"${ws}","name":"${name}"}\n`),
    );
    tabs.push(idOf(await wire.waitLine((l) => l.includes('"tab_created"')), "tab_id"));
  }
  const [full, empty, small] = tabs;
  const creates = (tab: string, count: number) => {
    let text = "";
    for (let i = 0; i < count; i++) {
      text += `{"cmd":"create_block","tab_id":"${tab}","meta":null}\n`;
    }
    return encoder.encode(text);
  };
  const fillInto = async (tab: string, count: number) => {
    const ids: string[] = [];
    for (let done = 0; done < count;) {
      const size = Math.min(256, count - done);
      await wire.write(creates(tab, size));
      for (let i = 0; i < size; i++) {
        ids.push(idOf(await wire.waitLine((l) => l.includes('"block_created"')), "block_id"));
      }
      done += size;
    }
    return ids;
  };
  stage = `tree fill ${fill}`;
  const fillStart = performance.now();
  const fullIds = await fillInto(full, fill);
  const fillMs = performance.now() - fillStart;
  const smallIds = await fillInto(small, 64);
  if (!wire.settled) throw new Error("unexpected lines after the fill");
  const moves = (tab: string, ids: string[]) =>
    Array.from({ length: VARIANTS }, () => {
      let text = "";
      for (let i = 0; i < batch; i++) {
        const id = ids[Math.floor(next() * ids.length)];
        const index = Math.floor(next() * ids.length);
        text +=
          `{"cmd":"move_block","block_id":"${id}","src_tab_id":"${tab}","dst_tab_id":"${tab}","dst_index":${index}}\n`;
      }
      return encoder.encode(text);
    });
  const plan: [string, Uint8Array[], string][] = [
    ["create_full", [creates(full, batch)], "block_created"],
    ["create_empty", [creates(empty, batch)], "block_created"],
    ["move_full", moves(full, fullIds), "block_moved"],
    ["move_small", moves(small, smallIds), "block_moved"],
  ];
  const result: Record<string, unknown> = {};
  for (const [name, batches, expect] of plan) {
    stage = `tree ${name} warm-up`;
    await timedSteps(wire, batches, batch, steps, expect);
    stage = `tree ${name}`;
    const cpu = cpuMeter(config.pid);
    result[`${name}_per_s`] = await timedSteps(wire, batches, batch, steps, expect);
    result[`${name}_server_cpu`] = cpu().server_cpu;
  }
  wire.close();
  return { ...result, fill, steps, batch, fill_per_s: Math.round((fill * 1000) / fillMs) };
}

/** srv only: fill the log, then time `get_events{since:0}` from a fresh connection. */
async function catchUp(config: LoadConfig): Promise<Record<string, unknown>> {
  const next = seededRandom(config.seed);
  const fill = config.fill ?? 5000;
  const batch = config.batch ?? 256;
  const samples = config.samples ?? 5;
  stage = "catchup fill";
  const filler = await openWire(config, PID_BASE);
  const batches = Array.from({ length: VARIANTS }, () => makeBatch("srv", batch, next));
  const fillStart = performance.now();
  let sent = 0;
  for (let k = 0; sent < fill; k++) {
    const size = Math.min(batch, fill - sent);
    const b = size === batch ? batches[k % VARIANTS] : makeBatch("srv", size, next);
    await filler.write(b.bytes);
    await filler.awaitLines(size);
    sent += size;
  }
  const fillMs = performance.now() - fillStart;
  stage = "catchup fresh connection";
  const reader = await openWire(config, PID_BASE + 1, 1024 * 1024);
  const request = encoder.encode(`{"cmd":"get_events","since":0}\n`);
  const times: number[] = [];
  let events = 0;
  let truncated: unknown = null;
  let bytes = 0;
  for (let i = 0; i < samples; i++) {
    stage = `catchup sample ${i + 1}`;
    const t0 = performance.now();
    await reader.write(request);
    const reply = await reader.readLongLine(i === 0);
    times.push(performance.now() - t0);
    bytes = reply.bytes;
    if (reply.text !== null) {
      const parsed = JSON.parse(reply.text);
      if (parsed.event !== "event_list") {
        throw new Error(`expected event_list, got ${parsed.event}`);
      }
      events = parsed.events.length;
      truncated = parsed.truncated;
    }
  }
  reader.close();
  filler.close();
  const sorted = [...times].sort((a, b) => a - b);
  const ms = (x: number) => Math.round(x * 100) / 100;
  return {
    p50_ms: ms(percentile(sorted, 50)),
    first_ms: ms(times[0]),
    samples_ms: times.map(ms),
    min_ms: ms(sorted[0]),
    samples,
    events,
    truncated,
    reply_bytes: bytes,
    filled: fill,
    fill_per_s: Math.round((fill * 1000) / fillMs),
  };
}

function readRssKb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

/** A connection that only reads, remembering the version of the last line it got. */
class Sink {
  readonly conn: Deno.UnixConn;
  lastVersion = -1;
  lastRegistered = false;
  closed = false;
  readonly done: Promise<void>;

  constructor(conn: Deno.UnixConn) {
    this.conn = conn;
    this.done = this.#pump();
  }

  async #pump(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        if (buf[n - 1] !== LF) continue;
        const tail = decoder.decode(buf.subarray(Math.max(0, n - 400), n));
        const line = tail.slice(tail.lastIndexOf("\n", tail.length - 2) + 1);
        const m = line.match(/"version":(\d+)\}\s*$/);
        if (m) this.lastVersion = Number(m[1]);
        this.lastRegistered = line.includes('"event":"registered"');
      }
    } catch {
      // Closed.
    }
    this.closed = true;
  }
}

/**
 * srv only: RSS with `connections` idle registered connections. The first
 * one registers alone (its `registered` version is the base); the others
 * connect and register in waves of `WAVE`, each wave read to the end by
 * every connection before the next starts. (All at once, each connection
 * would be owed ~2000 events in a burst, past srv's default 1024-event send
 * queue: srv evicts readers this process cannot drain fast enough.) Idle
 * means every connection has read everything, then nothing happens for
 * `settleMs`.
 */
async function idle(config: LoadConfig): Promise<Record<string, unknown>> {
  const WAVE = 50;
  const count = config.connections ?? 1000;
  const pid = config.pid;
  if (pid === undefined) throw new Error("idle needs the server's pid");
  stage = "idle baseline";
  const rssBefore = readRssKb(pid);
  const t0 = performance.now();
  stage = "idle first registration";
  const first = new Sink(await connect(config.socket));
  await writeAll(first.conn, srvRegister(PID_BASE));
  while (!first.lastRegistered) {
    if (first.closed) throw new Error("first connection closed by the server");
    await sleep(5);
  }
  const sinks: Sink[] = [first];
  let expected = first.lastVersion;
  while (sinks.length < count) {
    stage = `idle connect ${sinks.length + 1}/${count}`;
    const wave: Sink[] = [];
    while (wave.length < WAVE && sinks.length + wave.length < count) {
      wave.push(new Sink(await connect(config.socket)));
    }
    const base = PID_BASE + sinks.length;
    sinks.push(...wave);
    await Promise.all(wave.map((s, i) => writeAll(s.conn, srvRegister(base + i))));
    // Each later registration is process_spawned + registered.
    expected += 2 * wave.length;
    while (true) {
      let behind = 0;
      for (const s of sinks) {
        if (s.closed) throw new Error("a connection was closed by the server (evicted?)");
        if (s.lastVersion < expected) behind++;
      }
      stage = `idle wave to ${sinks.length}/${count}: ${behind} connections behind v${expected}`;
      if (behind === 0) break;
      await sleep(5);
    }
  }
  const setupMs = performance.now() - t0;
  stage = "idle settle";
  await sleep(config.settleMs ?? 1000);
  const rss = readRssKb(pid);
  for (const s of sinks) {
    try {
      s.conn.close();
    } catch {
      // Already closed.
    }
  }
  return {
    rss_kb: rss,
    rss_before_kb: rssBefore,
    per_connection_kb: Math.round(((rss - rssBefore) / count) * 10) / 10,
    connections: count,
    setup_ms: Math.round(setupMs),
  };
}

async function main(): Promise<void> {
  const config = JSON.parse(Deno.args[0] ?? "{}") as LoadConfig;
  const deadline = setTimeout(() => {
    emit({ ok: false, timeout: true, error: `timeout after ${config.deadlineMs} ms in ${stage}` });
    Deno.exit(3);
  }, config.deadlineMs ?? 60_000);
  const started = performance.now();
  try {
    const phases: Record<Phase, (c: LoadConfig) => Promise<Record<string, unknown>>> = {
      rtt: roundTrip,
      pipeline: pipelined,
      fanout,
      catchup: catchUp,
      idle,
      tree,
    };
    const run = phases[config.phase];
    if (!run) throw new Error(`unknown phase ${config.phase}`);
    const result = await run(config);
    emit({ ok: true, ...result, elapsed_ms: Math.round(performance.now() - started) });
  } catch (e) {
    emit({ ok: false, error: `${stage}: ${(e as Error).message ?? e}` });
  }
  clearTimeout(deadline);
  Deno.exit(0);
}

if (import.meta.main) await main();
