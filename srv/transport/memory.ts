/**
 * An in-memory {@linkcode Listener} and {@linkcode Connection}: the server's
 * protocol behaviour, tested in the test's own process without a socket
 * file, a child process or a kernel buffer whose size varies by OS.
 *
 * Each direction is a pipe with a fixed capacity. A write is taken at once
 * but resolves only once the reader has brought the pipe back within its
 * capacity, as a socket write blocks when the kernel buffer is full; so a
 * reader that stops reading ({@linkcode MemoryConnection.pauseReading})
 * makes the writer's writes block, deterministically. The ends can also be
 * half-closed ({@linkcode MemoryConnection.closeWrite}), closed, or reset
 * ({@linkcode MemoryConnection.reset}), with the errors Deno's own sockets
 * raise, so code that tells them apart behaves as it does on a socket.
 *
 * @example
 * ```ts
 * import { MemoryListener } from "./memory.ts";
 * const listener = new MemoryListener();
 * const client = listener.connect();
 * for await (const server of listener) {
 *   await client.write(new TextEncoder().encode("hi\n"));
 *   console.log(new TextDecoder().decode((await server.read())!)); // "hi\n"
 *   break;
 * }
 * listener.close();
 * ```
 *
 * @module
 */

import { type Connection, type Listener, MAX_READ_BUFFER } from "./transport.ts";

/** Bytes a pipe holds before writes block: about a socket buffer. */
export const DEFAULT_PIPE_CAPACITY = 256 * 1024;

/** One direction of a connection. */
class Pipe {
  readonly capacity: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** The writer shut this direction down: the reader sees end of stream after the data. */
  #ended = false;
  /** The reader is gone (closed or reset): writes fail. */
  #broken: Error | null = null;
  /** The reader sees this error instead of data (a reset from the other end). */
  #readError: Error | null = null;
  #paused = false;
  #readerWake: (() => void) | null = null;
  #writers: { upTo: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Bytes ever written, so each blocked write knows when its bytes are within capacity. */
  #written = 0;
  #consumed = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get buffered(): number {
    return this.#buffered;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.#broken) return Promise.reject(this.#broken);
    if (this.#ended) return Promise.reject(new Deno.errors.BrokenPipe("write after closeWrite"));
    if (bytes.length === 0) return Promise.resolve();
    // Copied: the writer may reuse its buffer once the write resolves, and a
    // socket has taken the bytes by then too.
    this.#chunks.push(bytes.slice());
    this.#buffered += bytes.length;
    this.#written += bytes.length;
    this.#wakeReader();
    // Resolves once at most `capacity` bytes written before the end of
    // this write are still unread: the "kernel" has taken all of it.
    const upTo = this.#written - this.capacity;
    if (this.#consumed >= upTo) return Promise.resolve();
    return new Promise((resolve, reject) => this.#writers.push({ upTo, resolve, reject }));
  }

  async read(): Promise<Uint8Array | null> {
    while (true) {
      if (this.#readError) throw this.#readError;
      if (!this.#paused && this.#chunks.length > 0) break;
      if (!this.#paused && this.#ended) return null;
      if (this.#broken) return null;
      await new Promise<void>((resolve) => (this.#readerWake = resolve));
    }
    let chunk = this.#chunks[0];
    if (chunk.length > MAX_READ_BUFFER) {
      this.#chunks[0] = chunk.subarray(MAX_READ_BUFFER);
      chunk = chunk.subarray(0, MAX_READ_BUFFER);
    } else {
      this.#chunks.shift();
    }
    this.#buffered -= chunk.length;
    this.#consumed += chunk.length;
    while (this.#writers.length > 0 && this.#writers[0].upTo <= this.#consumed) {
      this.#writers.shift()!.resolve();
    }
    return chunk;
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#wakeReader();
  }

  /** The writer is done: the reader gets the rest, then end of stream. */
  end(): void {
    this.#ended = true;
    this.#wakeReader();
  }

  /** The reader went away: unread data is dropped and every write fails. */
  breakWith(error: Error): void {
    if (this.#broken) return;
    this.#broken = error;
    this.#chunks = [];
    this.#buffered = 0;
    for (const w of this.#writers.splice(0)) w.reject(error);
    this.#wakeReader();
  }

  /** The writer reset the connection: the reader gets `error` instead of the rest. */
  failReader(error: Error): void {
    this.#readError ??= error;
    this.#chunks = [];
    this.#buffered = 0;
    this.#wakeReader();
  }

  #wakeReader(): void {
    const wake = this.#readerWake;
    this.#readerWake = null;
    wake?.();
  }
}

/**
 * One end of an in-memory connection. Besides {@linkcode Connection} it can
 * stop and resume reading, half-close, and reset, so tests can drive
 * backpressure and abrupt ends on purpose instead of by racing a socket.
 */
export class MemoryConnection implements Connection {
  readonly #in: Pipe;
  readonly #out: Pipe;
  #closed = false;

  private constructor(incoming: Pipe, outgoing: Pipe) {
    this.#in = incoming;
    this.#out = outgoing;
  }

  /**
   * Two connected ends; `capacity` bytes fit in each direction before writes
   * block.
   */
  static pair(capacity: number = DEFAULT_PIPE_CAPACITY): [MemoryConnection, MemoryConnection] {
    const ab = new Pipe(capacity);
    const ba = new Pipe(capacity);
    const a = new MemoryConnection(ba, ab);
    const b = new MemoryConnection(ab, ba);
    return [a, b];
  }

  /** The next chunk from the other end, or null once it has closed its writing side. */
  read(): Promise<Uint8Array | null> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    return this.#in.read();
  }

  /** Resolves once the other end has read enough for these bytes to fit its capacity. */
  write(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    return this.#out.write(bytes);
  }

  /** Stops taking data from the other end: its writes block once the pipe is full. */
  pauseReading(): void {
    this.#in.pause();
  }

  /** Takes data again; blocked writes on the other end resolve as it is read. */
  resumeReading(): void {
    this.#in.resume();
  }

  /** Bytes the other end wrote that this end has not read yet. */
  get unread(): number {
    return this.#in.buffered;
  }

  /** Half-close: the other end reads what was written, then end of stream; reading goes on. */
  closeWrite(): Promise<void> {
    this.#out.end();
    return Promise.resolve();
  }

  /**
   * Closes both directions, as a socket close: the other end still reads
   * what was written, then end of stream; its writes fail from now on.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.end();
    this.#in.breakWith(new Deno.errors.BrokenPipe("the other end closed the connection"));
  }

  /**
   * An abortive close (like RST): the other end's reads and writes fail with
   * `ConnectionReset`, and what was in flight is dropped.
   */
  reset(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new Deno.errors.ConnectionReset("connection reset by peer");
    this.#out.failReader(error);
    this.#in.breakWith(error);
  }
}

/**
 * Accepts in-memory connections made with {@linkcode MemoryListener.connect},
 * in order, until closed.
 */
export class MemoryListener implements Listener {
  /** Not a file: a name that says what this is in logs. */
  readonly path: string;
  readonly #capacity: number;
  #queue: MemoryConnection[] = [];
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(options: { path?: string; capacity?: number } = {}) {
    this.path = options.path ?? `memory:${crypto.randomUUID()}`;
    this.#capacity = options.capacity ?? DEFAULT_PIPE_CAPACITY;
  }

  /**
   * A client's end of a new connection; the server's end is accepted next.
   * Throws `ConnectionRefused` once the listener is closed, as a socket does.
   * `capacity` overrides the listener's for this connection only.
   */
  connect(capacity: number = this.#capacity): MemoryConnection {
    if (this.#closed) throw new Deno.errors.ConnectionRefused(`${this.path} is closed`);
    const [client, server] = MemoryConnection.pair(capacity);
    this.#queue.push(server);
    this.#wake?.();
    return client;
  }

  /** The server's ends of connections, in the order they were made; ends once closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<Connection> {
    while (true) {
      while (this.#queue.length > 0) yield this.#queue.shift()!;
      if (this.#closed) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = null;
    }
  }

  /** Stops accepting; connections not yet accepted are closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of this.#queue.splice(0)) conn.close();
    this.#wake?.();
  }
}
