/**
 * One connection as the server holds it: the bytes (`conn`), the protocol
 * rules (`session`) and the send queue (`outbox`) in one object, so reading,
 * eviction and disconnect all go through the same record (NATS' `client`).
 *
 * @module
 */

import { LineSplitter } from "../core/line_splitter.ts";
import type { LastCommand } from "../core/protocol.ts";
import type { ReducerCommand } from "../core/commands.ts";
import type { ReducerEvent } from "../core/decide.ts";
import { Session, type SessionIdentity } from "../core/session.ts";
import type { Connection } from "../transport/transport.ts";
import { Peer } from "./peer.ts";

/** Why a connection ended, logged once when it goes (see `Server`'s disconnect). */
export interface Ending {
  readonly level: "debug" | "warn" | "error";
  readonly reason: string;
  /** A bug in srv: logged with its stack. */
  readonly error?: unknown;
}

/** One open connection: what it sent, what it is owed, and why it ends. */
export class Client {
  /** Server-assigned connection id, for logs. */
  readonly id: number;
  readonly conn: Connection;
  readonly session: Session = new Session();
  /** What the connection has not read yet, and the limits it is judged by. */
  readonly outbox: Peer;
  /** Lines not yet complete, at most `maxLineBytes` each. */
  readonly splitter: LineSplitter;
  /** The first cause of the end, once known. */
  ending: Ending | null = null;
  /** What `server_info.last_command` reports to this connection. */
  lastCommand: LastCommand | null = null;
  /** Closes the connection if it has not registered in time; cleared once it has. */
  registerTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(id: number, conn: Connection, maxLineBytes: number) {
    this.id = id;
    this.conn = conn;
    this.outbox = new Peer(id, conn);
    this.splitter = new LineSplitter(maxLineBytes);
  }

  /** True once the outbox closed the connection (evicted, drained, failed). */
  get isClosed(): boolean {
    return this.outbox.isClosed;
  }

  /** The next chunk the client sent, or null at the end of its stream. */
  read(): Promise<Uint8Array | null> {
    return this.conn.read();
  }

  /** Records why the connection ends; the first cause wins. */
  endWith(level: Ending["level"], reason: string, error?: unknown): void {
    if (this.ending === null) this.ending = { level, reason, error };
  }

  /** The hub evicted it: the first cause, before the read side sees the close. */
  evicted(): void {
    this.endWith("warn", this.outbox.closeReason ?? "evicted");
  }

  /**
   * Who the connection last registered as. The session forgets its identity
   * on `goodbye` (no synthetic goodbye is owed any more), but the log line
   * for the connection's end still has to name it.
   */
  #registeredAs: SessionIdentity | null = null;

  /** kind and pid for logs; "unregistered" and null if it never registered. */
  who(): { kind: string; pid: number | null } {
    const identity = this.session.identity ?? this.#registeredAs;
    const kind = identity?.kind ?? (this.session.observer ? "observer" : "unregistered");
    return { kind, pid: identity?.pid ?? null };
  }

  /**
   * Tells the session what the reducer emitted (see `Session.afterReduce`),
   * remembering the identity for {@linkcode Client.who} and stopping the
   * register timer once registered. Returns whether to close now.
   */
  afterReduce(command: ReducerCommand, events: readonly ReducerEvent[]): { close: boolean } {
    const result = this.session.afterReduce(command, events);
    const identity = this.session.identity;
    if (identity !== null) {
      this.#registeredAs = identity;
      this.stopRegisterTimer();
    }
    return result;
  }

  /** Stops the register timer (registered, or gone). */
  stopRegisterTimer(): void {
    clearTimeout(this.registerTimer);
    this.registerTimer = undefined;
  }
}
