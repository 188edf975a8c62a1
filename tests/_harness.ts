/**
 * Test harness: a real srv process on a real socket in a temp dir, and a
 * line-oriented client. `SRV_TEST_BIN` points the harness at a compiled
 * binary instead of `deno run main.ts`, so the same tests check both.
 * `SRV_TEST_TRANSPORT=node` serves with `--transport node` and connects
 * through `node:net`, so the named-pipe code runs on Linux and macOS too;
 * on Windows that is the only transport (the endpoint is a named pipe).
 */

import { fileURLToPath } from "node:url";
import { LineSplitter } from "../srv/core/line_splitter.ts";
import { parseJson } from "../srv/core/codec.ts";
import { connectNamedPipe } from "../srv/transport/node_net.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Upper bound for one expected line to arrive; a hang fails instead of blocking CI. */
export const LINE_TIMEOUT_MS = 10_000;

// deno-lint-ignore no-explicit-any
export type Json = any;

/** True on Windows, where srv serves named pipes and signals are not Unix signals. */
export const ON_WINDOWS = Deno.build.os === "windows";

/**
 * For `Deno.test(name, { ignore: unixOnly(reason) }, fn)`: true (skip) on
 * Windows, and then says so on stderr with the reason, so a skip is never
 * silent.
 */
export function unixOnly(reason: string): boolean {
  if (!ON_WINDOWS) return false;
  Deno.stderr.writeSync(encoder.encode(`skipped on Windows: ${reason}\n`));
  return true;
}

/** The mirror of {@linkcode unixOnly}: true (skip) everywhere but Windows, with the reason. */
export function windowsOnly(reason: string): boolean {
  if (ON_WINDOWS) return false;
  Deno.stderr.writeSync(encoder.encode(`skipped off Windows: ${reason}\n`));
  return true;
}

/**
 * True (skip) when the suite runs on the `node:net` transport, saying why on
 * stderr: for behaviour only the `Deno.listen` transport provides.
 */
export function unixTransportOnly(reason: string): boolean {
  if (testTransport() === "unix") return false;
  Deno.stderr.writeSync(encoder.encode(`skipped on the node transport: ${reason}\n`));
  return true;
}

/** The transport under test: `SRV_TEST_TRANSPORT` (unix|node), always node on Windows. */
export function testTransport(): "unix" | "node" {
  if (ON_WINDOWS) return "node";
  const chosen = Deno.env.get("SRV_TEST_TRANSPORT") ?? "unix";
  if (chosen !== "unix" && chosen !== "node") {
    throw new Error(`SRV_TEST_TRANSPORT must be unix or node, got "${chosen}"`);
  }
  return chosen;
}

/** A fresh endpoint for one server: a pipe name on Windows, `<dir>/srv.sock` elsewhere. */
export function testEndpoint(dir: string): string {
  return ON_WINDOWS ? `\\\\.\\pipe\\srv-test-${crypto.randomUUID()}` : `${dir}/srv.sock`;
}

/** The command that starts srv: the compiled binary when SRV_TEST_BIN is set. */
export function srvCommand(args: string[]): { cmd: string; args: string[] } {
  const bin = Deno.env.get("SRV_TEST_BIN");
  if (bin) return { cmd: bin, args };
  return { cmd: Deno.execPath(), args: ["run", "-A", MAIN, ...args] };
}

/** Runs `srv <args>` to completion and returns its exit code and output. */
export async function runSrv(
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { cmd, args: full } = srvCommand(args);
  const child = new Deno.Command(cmd, {
    args: full,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(encoder.encode(options.stdin));
    await w.close();
  }
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** A srv process under test. */
export interface SrvProcess {
  readonly socket: string;
  readonly dir: string;
  readonly pid: number;
  readonly instance: string;
  readonly readyLine: string;
  readonly child: Deno.ChildProcess;
  /** Everything srv wrote to stderr so far. */
  stderr(): string;
  /** Sends a signal and waits for the exit; returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Waits for the process to exit on its own. */
  exited(): Promise<number>;
}

/**
 * Collects a spawned srv's stderr and reads its stdout up to the end of its
 * first line (the readiness line), or until it exits first (`ready` false).
 */
export async function awaitReadiness(child: Deno.ChildProcess): Promise<{
  ready: boolean;
  stdout: string;
  stderr: () => string;
  errDone: Promise<void>;
  reader: ReadableStreamDefaultReader<Uint8Array>;
}> {
  let errText = "";
  const errDone = (async () => {
    for await (const chunk of child.stderr) errText += decoder.decode(chunk, { stream: true });
  })();
  const reader = child.stdout.getReader();
  let stdout = "";
  const status = child.status;
  while (!stdout.includes("\n")) {
    const next = await Promise.race([reader.read(), status.then(() => null)]);
    if (next === null || next.done) break;
    stdout += decoder.decode(next.value, { stream: true });
  }
  return { ready: stdout.includes("\n"), stdout, stderr: () => errText, errDone, reader };
}

/**
 * Starts `srv serve --socket <tmp>/srv.sock` with extra flags (default
 * `--memory`) and waits for its readiness line. `socket: null` passes no
 * `--socket`, so srv resolves the endpoint itself (the ready line says where).
 */
export async function startSrv(
  options: {
    flags?: string[];
    dir?: string;
    socket?: string | null;
    env?: Record<string, string>;
  } = {},
): Promise<SrvProcess> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "srv-test-" });
  const ownsDir = options.dir === undefined;
  const socketFlag = options.socket === null
    ? []
    : ["--socket", options.socket ?? testEndpoint(dir)];
  const flags = [...(options.flags ?? ["--memory"])];
  if (!flags.includes("--transport") && testTransport() === "node" && !ON_WINDOWS) {
    flags.push("--transport", "node");
  }
  const { cmd, args } = srvCommand(["serve", ...socketFlag, ...flags]);
  const child = new Deno.Command(cmd, {
    args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const status = child.status;
  const { ready, stdout: outText, stderr, errDone, reader } = await awaitReadiness(child);
  if (!ready) {
    await errDone;
    reader.releaseLock();
    throw new Error(`srv exited before it was ready: ${stderr()}`);
  }
  // Drain the rest of stdout so the pipe never blocks srv.
  const outDone = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const readyLine = outText.split("\n")[0];
  const fields = Object.fromEntries(
    readyLine.split(" ").slice(2).map((kv) => kv.split("=") as [string, string]),
  );
  let exitCode: Promise<number> | null = null;
  const exited = () => {
    exitCode ??= (async () => {
      const s = await status;
      await Promise.all([errDone, outDone]);
      if (ownsDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
      return s.code;
    })();
    return exitCode;
  };
  return {
    socket: fields.socket,
    dir,
    pid: Number(fields.pid),
    instance: fields.instance,
    readyLine,
    child,
    stderr,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // Already gone.
      }
      return await exited();
    },
    exited,
  };
}

/** The client side of a connection, over `Deno.connect` or `node:net`. */
export interface ClientConn {
  read(): Promise<Uint8Array | null>;
  write(bytes: Uint8Array): Promise<void>;
  closeWrite(): Promise<void>;
  close(): void;
}

class DenoClientConn implements ClientConn {
  #conn: Deno.UnixConn;
  #buf = new Uint8Array(64 * 1024);
  constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }
  async read(): Promise<Uint8Array | null> {
    const n = await this.#conn.read(this.#buf);
    return n === null ? null : this.#buf.subarray(0, n);
  }
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }
  close(): void {
    this.#conn.close();
  }
}

/**
 * Connects like a client of the transport under test: `node:net` for the
 * node transport (and always on Windows), `Deno.connect` otherwise.
 */
export async function connectClient(path: string): Promise<ClientConn> {
  if (testTransport() === "node") return await connectNamedPipe(path);
  return new DenoClientConn(await Deno.connect({ transport: "unix", path }));
}

/** A newline-JSON client for tests: send commands, await lines in order. */
export class TestClient {
  readonly conn: ClientConn;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #eof = false;
  #pump: Promise<void>;

  private constructor(conn: ClientConn, maxLine: number) {
    this.conn = conn;
    this.#pump = this.#read(maxLine);
  }

  /**
   * Connects and returns once the server has accepted the connection, so
   * broadcasts caused afterwards are guaranteed to reach it. A finished
   * `connect` only means the kernel queued the connection; the server may
   * accept it a little later (the node:net transport measurably so), and a
   * test that then makes another client broadcast would race.
   */
  static async connect(path: string, maxLine = 64 * 1024 * 1024): Promise<TestClient> {
    return await TestClient.over(await connectClient(path), maxLine);
  }

  /** Like {@linkcode TestClient.connect}, over a connection made elsewhere (e.g. in memory). */
  static async over(conn: ClientConn, maxLine = 64 * 1024 * 1024): Promise<TestClient> {
    const client = new TestClient(conn, maxLine);
    await client.#untilAccepted();
    return client;
  }

  /**
   * Sends an unparseable line and waits for its private error (or for the
   * server to close a refused connection), then removes that one reply so
   * the test sees exactly the lines it would have seen without it.
   */
  async #untilAccepted(): Promise<void> {
    try {
      await this.send("#accepted?");
    } catch {
      return; // Refused and closed by the server before our write.
    }
    const isReply = (line: string) =>
      line.startsWith('{"event":"error","code":"invalid_command","message":"parse failed:') &&
      line.endsWith('"version":0}');
    while (true) {
      const i = this.#lines.findIndex(isReply);
      if (i >= 0) {
        this.#lines.splice(i, 1);
        return;
      }
      if (this.#eof) return;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async #read(maxLine: number): Promise<void> {
    const split = new LineSplitter(maxLine);
    try {
      while (true) {
        const chunk = await this.conn.read();
        if (chunk === null) break;
        split.push(chunk, (line) => {
          this.#lines.push(decoder.decode(line));
        });
        this.#wake();
      }
    } catch {
      // Reset by peer counts as end of stream here.
    }
    this.#eof = true;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Sends a command object (or a raw line) followed by `\n`. */
  async send(command: Json | string): Promise<void> {
    const line = typeof command === "string" ? command : JSON.stringify(command);
    await this.writeRaw(encoder.encode(line + "\n"));
  }

  /** Writes raw bytes as they are. */
  async writeRaw(bytes: Uint8Array): Promise<void> {
    await this.conn.write(bytes);
  }

  /** Shuts down the writing side; the server reads end of stream. */
  async closeWrite(): Promise<void> {
    await this.conn.closeWrite();
  }

  /** The next line, raw. Rejects at end of stream or after the timeout. */
  async nextLine(timeoutMs = LINE_TIMEOUT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.#lines.length === 0) {
      if (this.#eof) throw new Error("connection closed while waiting for a line");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no line within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.#lines.shift()!;
  }

  /** The next event, parsed (integers above 2^53 as bigint). */
  async next(timeoutMs = LINE_TIMEOUT_MS): Promise<Json> {
    return parseJson(await this.nextLine(timeoutMs));
  }

  /** The next `n` events. */
  async take(n: number): Promise<Json[]> {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.next());
    return out;
  }

  /** Sends a command and returns the next event. */
  async request(command: Json | string): Promise<Json> {
    await this.send(command);
    return await this.next();
  }

  /** Resolves true once the server has closed the connection (all lines read). */
  async closedByServer(timeoutMs = LINE_TIMEOUT_MS): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#eof) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return true;
  }

  /** Lines received but not yet taken. */
  get buffered(): readonly string[] {
    return this.#lines;
  }

  /** Registers with the given pid and kind; returns the three events. */
  async register(pid: number, kind = "tool", version = "test"): Promise<Json[]> {
    await this.send({ cmd: "register", kind, pid, version });
    const first = await this.next();
    if (first.event === "error") return [first];
    const events = [first];
    while (events.at(-1).event !== "registered") events.push(await this.next());
    return events;
  }

  /**
   * A barrier: sends a private request and returns every line that arrived
   * before its answer. Proves what did (not) arrive without sleeping.
   */
  async drainUntilPrivateReply(): Promise<Json[]> {
    await this.send("#barrier");
    const before = [];
    while (true) {
      const e = await this.next();
      if (e.event === "error" && e.version === 0 && /parse failed/.test(e.message)) return before;
      before.push(e);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  /** Closes and waits for the reader to finish (keeps test sanitizers happy). */
  async dispose(): Promise<void> {
    this.close();
    await this.#pump;
  }
}

/** Runs `fn` with a fresh srv and disposes everything afterwards. */
export async function withSrv(
  fn: (srv: SrvProcess, connect: () => Promise<TestClient>) => Promise<void>,
  options: Parameters<typeof startSrv>[0] = {},
): Promise<void> {
  const srv = await startSrv(options);
  const clients: TestClient[] = [];
  const connect = async () => {
    const c = await TestClient.connect(srv.socket);
    clients.push(c);
    return c;
  };
  try {
    await fn(srv, connect);
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await srv.stop();
  }
}
