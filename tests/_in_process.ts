/**
 * In-process harness: a real {@linkcode Server} over the in-memory transport,
 * built from the same `srv serve` flags a process would get, so protocol
 * tests run without a child process or a socket. What srv logs is captured
 * as text (`stderr()`), and LogTape is reset per test: in-process tests
 * share the runtime's globals.
 */

import { configure, type LogRecord, reset } from "../deps.ts";
import { parseServeArgs, serverBounds } from "../srv/cli/serve_args.ts";
import { Server } from "../srv/server/server.ts";
import { type MemoryConnection, MemoryListener } from "../srv/transport/memory.ts";
import { SRV_VERSION } from "../srv/version.ts";
import { TestClient } from "./_harness.ts";

/** An in-process srv under test: the counterpart of `SrvProcess`. */
export interface InProcessSrv {
  readonly server: Server;
  readonly listener: MemoryListener;
  /** The listener's name; not a file. */
  readonly socket: string;
  /** The pid the server reports (this process's). */
  readonly pid: number;
  readonly instance: string;
  /** What srv logged so far, one line per record, as `level category: message`. */
  stderr(): string;
  /** A raw client end, for tests that drive backpressure or resets by hand. */
  rawConnect(capacity?: number): MemoryConnection;
}

function render(record: LogRecord): string {
  const message = record.message.map((part) => typeof part === "string" ? part : String(part))
    .join("");
  return `${record.level} ${record.category.join("·")}: ${message}`;
}

/**
 * Runs `fn` with a fresh in-process srv configured by `flags` (as for
 * `srv serve`; `--memory` by default) and tears everything down afterwards.
 */
export async function withServer(
  fn: (srv: InProcessSrv, connect: () => Promise<TestClient>) => Promise<void>,
  options: { flags?: string[] } = {},
): Promise<void> {
  const config = parseServeArgs(options.flags ?? ["--memory"]);
  if (!config.memory) throw new Error("in-process tests serve from memory; stores need a process");
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { memory: (r) => lines.push(render(r)) },
    loggers: [
      { category: ["srv"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["memory"] },
    ],
  });
  const server = new Server({
    identity: { pid: Deno.pid, version: SRV_VERSION, instanceId: crypto.randomUUID() },
    ...serverBounds(config),
  });
  const listener = new MemoryListener();
  const serving = server.serve(listener);
  const clients: TestClient[] = [];
  const raw: MemoryConnection[] = [];
  const srv: InProcessSrv = {
    server,
    listener,
    socket: listener.path,
    pid: Deno.pid,
    instance: server.identity.instanceId,
    stderr: () => lines.join("\n"),
    rawConnect: (capacity?: number) => {
      const conn = listener.connect(capacity);
      raw.push(conn);
      return conn;
    },
  };
  const connect = async () => {
    const c = await TestClient.over(listener.connect());
    clients.push(c);
    return c;
  };
  try {
    await fn(srv, connect);
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    for (const conn of raw) conn.close();
    await server.shutdown(100);
    await serving;
    await reset();
  }
}
