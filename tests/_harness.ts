/**
 * Test harness: a real srv process on a real socket in a temp dir, and a
 * line-oriented client. `SRV_TEST_BIN` points the harness at a compiled
 * binary instead of `deno run main.ts`, so the same tests check both.
 */

import { LineSplitter, parseJson } from "../mod.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Upper bound for one expected line to arrive; a hang fails instead of blocking CI. */
export const LINE_TIMEOUT_MS = 10_000;

// deno-lint-ignore no-explicit-any
export type Json = any;

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
 * Starts `srv serve --socket <tmp>/srv.sock` with extra flags (default
 * `--memory`) and waits for its readiness line.
 */
export async function startSrv(
  options: { flags?: string[]; dir?: string; socket?: string; env?: Record<string, string> } = {},
): Promise<SrvProcess> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "srv-test-" });
  const ownsDir = options.dir === undefined;
  const socket = options.socket ?? `${dir}/srv.sock`;
  const flags = options.flags ?? ["--memory"];
  const { cmd, args } = srvCommand(["serve", "--socket", socket, ...flags]);
  const child = new Deno.Command(cmd, {
    args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errText = "";
  const errDone = (async () => {
    for await (const chunk of child.stderr) errText += decoder.decode(chunk, { stream: true });
  })();
  const reader = child.stdout.getReader();
  let outText = "";
  const status = child.status;
  while (!outText.includes("\n")) {
    const next = await Promise.race([reader.read(), status.then(() => null)]);
    if (next === null || next.done) {
      await errDone;
      reader.releaseLock();
      throw new Error(`srv exited before it was ready: ${errText}`);
    }
    outText += decoder.decode(next.value, { stream: true });
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
    socket,
    dir,
    pid: Number(fields.pid),
    instance: fields.instance,
    readyLine,
    child,
    stderr: () => errText,
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

/** A newline-JSON client for tests: send commands, await lines in order. */
export class TestClient {
  readonly conn: Deno.UnixConn;
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #eof = false;
  #pump: Promise<void>;

  private constructor(conn: Deno.UnixConn, maxLine: number) {
    this.conn = conn;
    this.#pump = this.#read(maxLine);
  }

  static async connect(path: string, maxLine = 64 * 1024 * 1024): Promise<TestClient> {
    const conn = await Deno.connect({ transport: "unix", path });
    return new TestClient(conn, maxLine);
  }

  async #read(maxLine: number): Promise<void> {
    const split = new LineSplitter(maxLine);
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        split.push(buf.subarray(0, n), (line) => {
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
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
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
