/**
 * The one small interface between srv and its sockets. The server only ever
 * sees {@linkcode Listener} and {@linkcode Connection}; Unix sockets
 * (`Deno.listen`) and Windows named pipes (`node:net`) implement them.
 *
 * @module
 */

/** One client's byte stream. */
export interface Connection {
  /**
   * The next chunk of bytes, or null at end of stream. The view is only
   * valid until the next call. Rejects on a read error.
   */
  read(): Promise<Uint8Array | null>;
  /** Writes all of `bytes`; rejects when the peer is gone. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes both directions. Safe to call more than once. */
  close(): void;
}

/** Accepts connections on an endpoint until closed. */
export interface Listener extends AsyncIterable<Connection> {
  /** The endpoint path (socket file or pipe name). */
  readonly path: string;
  /** Stops accepting; the iterator ends. Safe to call more than once. */
  close(): void;
}

/** Read buffer sizes: small for idle connections, growing for busy ones. */
export const MIN_READ_BUFFER = 4 * 1024;
/** Largest read buffer a connection grows to. */
export const MAX_READ_BUFFER = 64 * 1024;

/** Why the endpoint cannot be used; `code` picks the exit code. */
export class EndpointError extends Error {
  /** `in_use`: another server has it; `unsafe`: the path failed a safety check. */
  readonly code: "in_use" | "unsafe";
  /** An endpoint problem of the given kind. */
  constructor(code: "in_use" | "unsafe", message: string) {
    super(message);
    this.name = "EndpointError";
    this.code = code;
  }
}
