/**
 * Unix domain socket transport on `Deno.listen`.
 *
 * @module
 */

import { getLogger } from "../../deps.ts";
import { type Connection, type Listener, MAX_READ_BUFFER, MIN_READ_BUFFER } from "./transport.ts";

/** How long accept waits before trying again after running out of descriptors. */
export const ACCEPT_RETRY_MS = 100;

/**
 * Accept failures that say "not now" rather than "never": out of file
 * descriptors or kernel memory, or a client that gave up while queued.
 * Throwing on them would let any client that opens enough connections
 * crash the server.
 */
function isTransientAcceptError(e: unknown): boolean {
  if (e instanceof Deno.errors.ConnectionAborted || e instanceof Deno.errors.Interrupted) {
    return true;
  }
  const code = (e as { code?: unknown }).code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOBUFS" || code === "ENOMEM";
}

/**
 * Binds a Unix socket at `path` with mode 0600 from the moment the file
 * exists: the process umask is narrowed around the (synchronous) bind, so
 * there is no chmod-after-bind window. The caller prepares the directory and
 * clears stale sockets first (see `prepareSocketPath`).
 *
 * @example
 * ```ts ignore
 * import { listenUnix } from "./unix.ts";
 * const listener = listenUnix("/tmp/srv-test/srv.sock");
 * for await (const conn of listener) conn.close();
 * ```
 */
export function listenUnix(path: string): Listener {
  const previous = Deno.umask(0o177);
  let inner: Deno.UnixListener;
  try {
    inner = Deno.listen({ transport: "unix", path });
  } finally {
    Deno.umask(previous);
  }
  return new UnixListener(inner, path);
}

class UnixListener implements Listener {
  readonly path: string;
  #inner: Deno.UnixListener;
  #closed = false;
  #retry: { timer: ReturnType<typeof setTimeout>; wake: () => void } | null = null;
  #log = getLogger(["srv", "transport"]);

  constructor(inner: Deno.UnixListener, path: string) {
    this.#inner = inner;
    this.path = path;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    let failing: string | null = null;
    while (!this.#closed) {
      let conn: Deno.UnixConn;
      try {
        conn = await this.#inner.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        if (!isTransientAcceptError(e)) throw e;
        // Log the start of an episode once, not every retry.
        if (failing === null) {
          failing = (e as Error).message;
          this.#log.warn("cannot accept connections on {path}: {error}; retrying", {
            path: this.path,
            error: failing,
          });
        }
        await this.#pause(ACCEPT_RETRY_MS);
        continue;
      }
      if (failing !== null) {
        this.#log.info("accepting connections on {path} again", { path: this.path });
        failing = null;
      }
      yield new UnixConnection(conn);
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#retry = null;
        resolve();
      };
      this.#retry = { timer: setTimeout(wake, ms), wake };
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry !== null) {
      clearTimeout(this.#retry.timer);
      this.#retry.wake();
    }
    try {
      this.#inner.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}

/** A `Deno.Conn` seen through the {@linkcode Connection} interface. */
export class UnixConnection implements Connection {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(MIN_READ_BUFFER);
  #closed = false;

  /** Wraps an accepted or dialed Unix socket. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async read(): Promise<Uint8Array | null> {
    if (this.#closed) return null;
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buffer);
    } catch (e) {
      if (this.#closed || e instanceof Deno.errors.BadResource) return null;
      throw e;
    }
    if (n === null) return null;
    const chunk = this.#buffer.subarray(0, n);
    // A full buffer means the peer is sending fast: read more per call next
    // time. Idle connections keep the small buffer, which keeps RSS low.
    if (n === this.#buffer.length && n < MAX_READ_BUFFER) {
      this.#buffer = new Uint8Array(n * 2);
    }
    return chunk;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < bytes.length) {
      offset += await this.#conn.write(offset === 0 ? bytes : bytes.subarray(offset));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}
