/**
 * The options of {@linkcode connect} and {@linkcode SrvClient.register}, and
 * the connection status a client reports.
 *
 * @module
 */

import type { ClientKind, U64 } from "../core/protocol.ts";
import type { Connection } from "../transport/transport.ts";

/** Backoff between reconnect attempts. */
export interface ReconnectOptions {
  /** Wait before the first attempt, in ms (default 50). */
  readonly initialDelayMs?: number;
  /** The wait doubles per failed attempt up to this, in ms (default 2000). */
  readonly maxDelayMs?: number;
}

/** A change in the client's connection, for logs and progress output. */
export type ClientStatus =
  /** The connection dropped; a reconnect follows when enabled. */
  | { readonly state: "disconnected"; readonly reason: string }
  /** An attempt to reconnect failed; the next one comes after `delayMs`. */
  | { readonly state: "retrying"; readonly attempt: number; readonly error: string }
  /** Connected, registered and caught up again. */
  | {
    readonly state: "reconnected";
    readonly instanceId: string;
    /** True when the stream resumed from a snapshot (a `resync` item). */
    readonly resynced: boolean;
  };

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * The endpoint. Default: like `srv serve`, `$SRV_SOCKET`, then
   * `$AGENTMUX_SRV_PIPE_PATH`, then the per-user default.
   */
  readonly socket?: string;
  /**
   * Reconnect after a drop (default true, with the default backoff). Only a
   * registered client reconnects; it registers again with the same kind,
   * pid and version.
   */
  readonly reconnect?: boolean | ReconnectOptions;
  /** Opens a connection to `path`; {@linkcode dialEndpoint} by default. */
  readonly dial?: (path: string) => Promise<Connection>;
  /** Told about drops and reconnects. */
  readonly onStatus?: (status: ClientStatus) => void;
  /**
   * Protocol 2 (docs/PROTOCOL.md §11.1): {@linkcode connect} registers the
   * client as a read-only observer before it returns. An observer leaves
   * no trace (no process record, no event, no version) and may only read:
   * `ping`, `snapshot`, `getEvents`, `serverInfo`, `events`. Default false.
   */
  readonly observe?: boolean;
}

/** What {@linkcode SrvClient.register} sends. */
export interface RegisterOptions {
  /** What kind of client this is (`register.kind`). */
  readonly kind: ClientKind;
  /** Default: this process's pid. */
  readonly pid?: number;
  /** The client's version string. Default: srv's version. */
  readonly version?: string;
  /** Register as a read-only observer (§11.1); see {@linkcode ConnectOptions.observe}. */
  readonly observe?: boolean;
}

/** What {@linkcode SrvClient.batch} takes besides the commands. */
export interface BatchOptions {
  /** Apply only if nothing the commands name changed after this version (§11.3). */
  readonly ifUnchangedSince?: U64;
}
