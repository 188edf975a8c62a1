/**
 * How a {@linkcode Server} is set up: its identity, its options and their
 * defaults.
 *
 * @module
 */

import type { EventHistory } from "../core/event_log.ts";
import type { Limits } from "../core/limits.ts";
import type { State } from "../core/state.ts";
import type { OutputLimits } from "./peer.ts";

/** Default of `--max-connections`. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/**
 * Default of `--register-timeout`: a connection must register within 10 s
 * (docs/PROTOCOL.md §10).
 */
export const DEFAULT_REGISTER_TIMEOUT_MS = 10_000;

/** How long a closing connection may take to drain its queue, in ms. */
export const DRAIN_DEADLINE_MS = 2000;

/** Who the server is: filled into `registered`, `server_info` and `event_list`. */
export interface ServerIdentity {
  /** The server's process id. */
  readonly pid: number;
  /** The server's version. */
  readonly version: string;
  /** Fresh for every server start, so clients can tell a restart apart. */
  readonly instanceId: string;
}

/** Everything a {@linkcode Server} is built from. */
export interface ServerOptions {
  /** Who the server is. */
  readonly identity: ServerIdentity;
  /** Where logged events go; an in-memory ring when absent. */
  readonly history?: EventHistory;
  /** Where to start (a state rebuilt from a store); fresh when absent. */
  readonly initialState?: State;
  /** Shown as `server_info.store`. */
  readonly storePath?: string | null;
  /** Longest line a connection may send, in bytes. */
  readonly maxLineBytes?: number;
  /** Most open connections; one more is refused. */
  readonly maxConnections?: number;
  /** Size caps of the tree (docs/PROTOCOL.md §10); each absent one is its default. */
  readonly limits?: Partial<Limits>;
  /** When a connection that does not read is evicted (and stops being read). */
  readonly outputLimits?: OutputLimits;
  /**
   * Most bytes of one `event_list` reply (and at most half the hard output
   * limit); older events are left out past it.
   */
  readonly maxReplyBytes?: number;
  /** How long a connection may stay unregistered, in ms. */
  readonly registerTimeoutMs?: number;
  /** Mints entity ids; lowercase UUIDv4 by default. */
  readonly newId?: () => string;
  /** Milliseconds, for `uptime_ms`; `performance.now` by default. */
  readonly now?: () => number;
  /**
   * Called when the history cannot commit. Nothing from that turn was sent;
   * the server has stopped and closed every connection.
   */
  readonly onFatal?: (error: unknown) => void;
}
