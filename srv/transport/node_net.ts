/**
 * The `node:net` transport: Windows named pipes, and on Linux and macOS the
 * same code on a Unix socket path (so it is exercised by every test run, not
 * only on Windows). Chosen automatically on Windows; `--transport node`
 * picks it elsewhere.
 *
 * What Deno 2.9.6's `node:net` does underneath (read in Deno's
 * `libs/core/uv_compat/pipe.rs` and `ext/node/ops/pipe_wrap.rs`; Windows
 * parts not run here):
 * - Unix: `listen(path)` creates and binds the socket synchronously, so the
 *   file is born with the process umask, exactly like `Deno.listen`.
 * - Windows: the first pipe instance is created with
 *   `FILE_FLAG_FIRST_PIPE_INSTANCE`; if any process already owns the name,
 *   listening fails (`EADDRINUSE`, `EACCES` in older builds). The pipe gets
 *   Windows' default security descriptor (no way to pass one through
 *   `node:net`), and its instance limit is `NODE_PENDING_PIPE_INSTANCES`
 *   (default 4), which srv raises; see {@linkcode listenNamedPipe}.
 *
 * @module
 */

import net from "node:net";
import { type Connection, EndpointError, type Listener, MAX_READ_BUFFER } from "./transport.ts";

/**
 * Windows caps a pipe at the instance count its first instance declares,
 * and Deno takes that from `NODE_PENDING_PIPE_INSTANCES` (default 4): with
 * the default, a fifth simultaneous client could not connect. 254 is the
 * most tokio accepts (255 means "unlimited" to Windows and tokio refuses
 * to pass it).
 */
export const WINDOWS_PIPE_INSTANCES = 254;

/** Options of {@linkcode listenNamedPipe}. */
export interface NamedPipeListenOptions {
  /**
   * Unix only: create the socket file with mode 0600 from the moment it
   * exists (the umask is narrowed until the listen completes, so there is
   * no window in which another user could connect), and verify the mode
   * afterwards. The caller still claims the path first
   * (`claimSocketPath`: private directory, lock, stale socket).
   */
  privateSocket?: boolean;
}

/**
 * Listens with `node:net` on `path`: a named pipe on Windows
 * (`\\.\pipe\NAME`), a Unix socket path elsewhere. Rejects with an
 * {@linkcode EndpointError} `in_use` when the name or path is taken.
 *
 * @example
 * ```ts ignore
 * import { listenNamedPipe } from "./node_net.ts";
 * const listener = await listenNamedPipe("\\\\.\\pipe\\srv-demo");
 * for await (const conn of listener) conn.close();
 * ```
 */
export async function listenNamedPipe(
  path: string,
  options: NamedPipeListenOptions = {},
): Promise<Listener> {
  if (Deno.build.os === "windows" && Deno.env.get("NODE_PENDING_PIPE_INSTANCES") === undefined) {
    Deno.env.set("NODE_PENDING_PIPE_INSTANCES", String(WINDOWS_PIPE_INSTANCES));
  }
  const server = net.createServer({ allowHalfOpen: true });
  const listener = new NamedPipeListener(server, path);
  const privateSocket = options.privateSocket === true && Deno.build.os !== "windows";
  // Narrowed until the listen has settled, not just around the call: should
  // a later Deno bind asynchronously, the file is still born 0600.
  const previousUmask = privateSocket ? Deno.umask(0o177) : null;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.once("listening", () => {
        server.off("error", reject);
        resolve();
      });
      server.listen({ path, exclusive: true });
    });
  } catch (e) {
    listener.close();
    throw listenError(e, path);
  } finally {
    if (previousUmask !== null) Deno.umask(previousUmask);
  }
  listener.watchErrors();
  if (privateSocket) {
    const mode = Deno.lstatSync(path).mode;
    if (mode === null || (mode & 0o077) !== 0) {
      listener.close();
      throw new EndpointError(
        "unsafe",
        `socket ${path} was created with mode ${mode?.toString(8)}, not 0600; refusing to serve`,
      );
    }
  }
  return listener;
}

function listenError(e: unknown, path: string): unknown {
  const code = (e as { code?: string }).code;
  // Windows reports a taken pipe name as ERROR_ACCESS_DENIED, which Deno
  // maps to EADDRINUSE (libuv's choice) or, in older builds, EACCES.
  if (code === "EADDRINUSE" || (code === "EACCES" && Deno.build.os === "windows")) {
    return new EndpointError(
      "in_use",
      `another srv (or another program) is already running at ${path}`,
    );
  }
  return e;
}

/**
 * Connects to a `node:net` endpoint (a named pipe on Windows, a Unix socket
 * elsewhere). Used by the Windows single-instance probe, by tests, and by
 * clients that must work on Windows.
 *
 * @example
 * ```ts ignore
 * import { connectNamedPipe } from "./node_net.ts";
 * const conn = await connectNamedPipe("\\\\.\\pipe\\srv-demo");
 * await conn.write(new TextEncoder().encode('{"cmd":"ping","nonce":1}\n'));
 * conn.close();
 * ```
 */
export function connectNamedPipe(path: string): Promise<NamedPipeConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path, allowHalfOpen: true });
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(new NamedPipeConnection(socket));
    });
  });
}

/**
 * True when a server accepts connections at `path` (a connect succeeds, or
 * the pipe exists but every instance is busy or closed to us). False when
 * nothing is there.
 *
 * @example
 * ```ts ignore
 * import { isNamedPipeLive } from "./node_net.ts";
 * if (await isNamedPipeLive("\\\\.\\pipe\\srv-demo")) console.error("already running");
 * ```
 */
export async function isNamedPipeLive(path: string): Promise<boolean> {
  try {
    (await connectNamedPipe(path)).close();
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === "ENOENT" || code === "ECONNREFUSED") return false;
    if (code === "EBUSY" || code === "EACCES" || code === "EPERM") return true;
    throw e;
  }
}

class NamedPipeListener implements Listener {
  readonly path: string;
  #server: net.Server;
  #accepted: NamedPipeConnection[] = [];
  #wake: (() => void) | null = null;
  #error: unknown = null;
  #closed = false;

  constructor(server: net.Server, path: string) {
    this.#server = server;
    this.path = path;
    server.on("connection", (socket: net.Socket) => {
      // Wrapped at once so the socket has its error handler from the start.
      const conn = new NamedPipeConnection(socket);
      if (this.#closed) {
        conn.close();
        return;
      }
      this.#accepted.push(conn);
      this.#notify();
    });
  }

  /** From now on a server error ends the accept loop with that error. */
  watchErrors(): void {
    this.#server.on("error", (e: unknown) => {
      this.#error = e;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (true) {
      const next = this.#accepted.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#closed) return;
      if (this.#error !== null) throw this.#error;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#accepted.splice(0)) conn.close();
    this.#notify();
  }
}

/** Most bytes handed to `node:net` in one write (see {@linkcode NamedPipeConnection.write}). */
export const WRITE_PIECE_BYTES = 64 * 1024;

interface PendingWrite {
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * A `node:net` socket seen through the {@linkcode Connection} interface.
 *
 * Backpressure: once {@linkcode MAX_READ_BUFFER} bytes have arrived that no
 * `read()` has taken, the socket is paused, so a peer that sends faster
 * than srv consumes is held back by the kernel's buffer instead of filling
 * srv's memory; `read()` resumes it. Below that the socket keeps flowing on
 * purpose: bytes Node holds in a paused stream are discarded if the stream
 * then errors, so pausing eagerly would lose the last lines a peer sent (or
 * a refusal srv sent) just before a connection reset.
 *
 * @example
 * ```ts ignore
 * import { connectNamedPipe } from "./node_net.ts";
 * const conn = await connectNamedPipe("/run/user/1000/srv/srv.sock");
 * await conn.write(new TextEncoder().encode('{"cmd":"get_server_info"}\n'));
 * const chunk = await conn.read(); // bytes of the reply, or null at end of stream
 * conn.close();
 * ```
 */
export class NamedPipeConnection implements Connection {
  #socket: net.Socket;
  #chunks: Uint8Array[] = [];
  #unreadBytes = 0;
  #ended = false;
  #error: unknown = null;
  #closed = false;
  #wake: (() => void) | null = null;
  #writes = new Set<PendingWrite>();

  /** Wraps a connected `node:net` socket. */
  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#unreadBytes += chunk.length;
      if (this.#unreadBytes >= MAX_READ_BUFFER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (e: unknown) => {
      this.#error ??= e;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#failWrites(this.#error ?? new Deno.errors.BrokenPipe("connection closed"));
      this.#notify();
    });
  }

  /** True while the socket is paused because unread bytes reached the limit. */
  get isPaused(): boolean {
    return this.#socket.isPaused();
  }

  /** Bytes received and not yet taken by `read()`. */
  get unreadBytes(): number {
    return this.#unreadBytes;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #failWrites(error: unknown): void {
    for (const write of this.#writes) write.reject(error);
    this.#writes.clear();
  }

  async read(): Promise<Uint8Array | null> {
    while (true) {
      if (this.#closed) return null;
      const chunk = this.#chunks.shift();
      if (chunk !== undefined) {
        this.#unreadBytes -= chunk.length;
        if (this.#unreadBytes < MAX_READ_BUFFER && this.#socket.isPaused()) this.#socket.resume();
        return chunk;
      }
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /**
   * Writes `bytes` in pieces of at most {@linkcode WRITE_PIECE_BYTES}, each
   * once the previous one is handed to the OS: what the socket cannot take
   * at once, `node:net` keeps a copy of, and a big broadcast shared by many
   * slow readers must not become one copy per reader (measured: 100
   * readers of 4 MB snapshots cost 480 MiB more in whole writes).
   */
  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length <= WRITE_PIECE_BYTES) return await this.#writePiece(bytes);
    for (let offset = 0; offset < bytes.length; offset += WRITE_PIECE_BYTES) {
      await this.#writePiece(bytes.subarray(offset, offset + WRITE_PIECE_BYTES));
    }
  }

  #writePiece(bytes: Uint8Array): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(this.#error ?? new Deno.errors.BrokenPipe("connection closed"));
    }
    return new Promise((resolve, reject) => {
      const pending: PendingWrite = { resolve, reject };
      this.#writes.add(pending);
      // The callback runs once the bytes are handed to the OS, or with the
      // error that stopped them.
      this.#socket.write(bytes, (error?: Error | null) => {
        if (!this.#writes.delete(pending)) return;
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /** Ends the writing side only (the peer reads end of stream). */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failWrites(new Deno.errors.BrokenPipe("connection closed"));
    this.#socket.destroy();
    this.#notify();
  }
}
