/**
 * The imperative shell: accept → frame → session → reduce → log → hub. One
 * command is reduced, logged and queued before the next is looked at, so all
 * clients see one order (PROTOCOL.md §7). Output is staged for the current
 * turn; at the end of the turn the event history commits, then every
 * connection gets one write, so nothing is broadcast before it is durable.
 *
 * @module
 */

import { getLogger, type Logger } from "../../deps.ts";
import { encodeEvent, encodeEventListLine, encodeEventListRuns } from "../core/codec.ts";
import type { ReducerEvent } from "../core/decide.ts";
import { DEFAULT_MAX_REPLY_BYTES, type EventHistory, EventLog } from "../core/event_log.ts";
import { DEFAULT_LIMITS, type Limits } from "../core/limits.ts";
import { DEFAULT_MAX_LINE_BYTES, LineSplitter } from "../core/line_splitter.ts";
import {
  type Event,
  isLogged,
  type LastCommand,
  type QueryCommand,
  type ReducerCommand,
  type RegisteredEvent,
} from "../core/protocol.ts";
import { update } from "../core/reducer.ts";
import { privateError, Session } from "../core/session.ts";
import { initialState, type State } from "../core/state.ts";
import type { Connection, Listener } from "../transport/transport.ts";
import { Hub } from "./hub.ts";
import { DEFAULT_OUTPUT_LIMITS, Peer } from "./peer.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REGISTER_TIMEOUT_MS,
  DRAIN_DEADLINE_MS,
  type ServerIdentity,
  type ServerOptions,
} from "./server_options.ts";

/** Why a connection ended, logged once when it goes (see `#disconnect`). */
interface Ending {
  readonly level: "debug" | "warn" | "error";
  readonly reason: string;
  /** A bug in srv: logged with its stack. */
  readonly error?: unknown;
}

interface Client {
  readonly peer: Peer;
  readonly session: Session;
  /** The first cause of the end, once known. */
  ending: Ending | null;
  /** What `server_info.last_command` reports to this connection. */
  lastCommand: LastCommand | null;
  /** Closes the connection if it has not registered in time; cleared once it has. */
  registerTimer: ReturnType<typeof setTimeout> | undefined;
}

const encoder = new TextEncoder();

/** Most characters of broadcast lines joined into one unit (see #flush). */
const RUN_CHARS = 32 * 1024;

/** The `registered` fields the reducer leaves as placeholders. */
function isUnpatchedRegistered(event: ReducerEvent): event is RegisteredEvent {
  return event.event === "registered" && event.launcher_pid === 0 && event.launcher_version === "";
}

/**
 * A running srv: give it a {@linkcode Listener} and it serves the protocol
 * on every connection until {@linkcode Server.shutdown}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openEndpoint, Server } from "@srv/srv/server";
 *
 * // A fresh endpoint: a named pipe on Windows, a socket file elsewhere.
 * const socket = Deno.build.os === "windows"
 *   ? `\\\\.\\pipe\\srv-example-${crypto.randomUUID()}`
 *   : `${Deno.makeTempDirSync()}/srv.sock`;
 * const endpoint = await openEndpoint({
 *   path: socket,
 *   transport: "auto",
 *   os: Deno.build.os,
 *   uid: null,
 * });
 * const server = new Server({
 *   identity: { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() },
 * });
 * const done = server.serve(endpoint.listener);
 * assert.equal(server.state.lifecycle, "starting"); // until the first client registers
 * // ... clients connect to `socket`; later:
 * await server.shutdown();
 * await done;
 * endpoint.release();
 * ```
 */
export class Server {
  /** Who this server is. */
  readonly identity: ServerIdentity;
  /** Where logged events go. */
  readonly history: EventHistory;
  /** The store's path, shown as `server_info.store`; null in memory. */
  readonly storePath: string | null;
  /** Longest line a connection may send. */
  readonly maxLineBytes: number;
  /** Most open connections; one more is refused. */
  readonly maxConnections: number;
  /** The tree's size caps. */
  readonly limits: Limits;
  /** Most bytes of one `event_list` reply. */
  readonly maxReplyBytes: number;
  /** How long a connection may stay unregistered, in ms. */
  readonly registerTimeoutMs: number;
  readonly #hub: Hub;
  readonly #clients = new Map<Peer, Client>();
  readonly #newId: () => string;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #onFatal: (error: unknown) => void;
  readonly #log: Logger = getLogger(["srv", "server"]);
  #state: State;
  #listener: Listener | null = null;
  #nextConnectionId = 1;
  /**
   * This turn's output, sent once the history has committed it: the lines
   * and who gets each (null: everyone). Reused every turn.
   */
  readonly #stagedTo: (Peer | null)[] = [];
  /** A line's JSON, or a whole private line already encoded (`\n` included). */
  readonly #stagedJson: (string | Uint8Array)[] = [];
  /**
   * Roughly how many bytes this turn staged for everyone, and for each
   * connection alone: with what it has not read yet, whether a connection
   * is past its soft limit before the hub has seen this turn's output.
   */
  #stagedForAll = 0;
  /** Private lines staged this turn, all connections together (characters or bytes). */
  #stagedPrivate = 0;
  readonly #stagedFor = new Map<Peer, number>();
  #flushScheduled = false;
  #stopping = false;
  #failed = false;

  /** Builds a server; it accepts nothing until {@linkcode Server.serve}. */
  constructor(options: ServerOptions) {
    this.identity = options.identity;
    // The ring need not hold more bytes than one reply can carry.
    this.history = options.history ??
      new EventLog(undefined, options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES);
    this.storePath = options.storePath ?? null;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
    this.registerTimeoutMs = options.registerTimeoutMs ?? DEFAULT_REGISTER_TIMEOUT_MS;
    this.#state = options.initialState ?? initialState();
    this.#newId = options.newId ?? (() => crypto.randomUUID());
    this.#now = options.now ?? (() => performance.now());
    this.#startedAt = this.#now();
    this.#onFatal = options.onFatal ?? (() => {});
    this.#hub = new Hub(options.outputLimits ?? DEFAULT_OUTPUT_LIMITS, (peer) => {
      // Logged by #disconnect, once the read side has seen the close.
      this.#endWith(this.#clients.get(peer), "warn", peer.closeReason ?? "evicted");
    });
  }

  /**
   * The current state. It is live: the server keeps updating its maps in
   * place, so copy what you need to keep (e.g. `snapshotOf(server.state)`).
   */
  get state(): State {
    return this.#state;
  }

  /** Open client connections. */
  get connectionCount(): number {
    return this.#clients.size;
  }

  /**
   * Accepts and serves connections until the listener closes. Rejects, after
   * shutting down, if the listener fails for good.
   */
  async serve(listener: Listener): Promise<void> {
    this.#listener = listener;
    const served = new Set<Promise<void>>();
    try {
      for await (const conn of listener) {
        if (this.#stopping) {
          conn.close();
          break;
        }
        const done = this.#accept(conn);
        served.add(done);
        done.finally(() => served.delete(done));
      }
    } catch (error) {
      // Not a shortage the transport retries (out of descriptors) but the
      // listener itself failing: stop cleanly instead of serving on deaf.
      this.#log.error("cannot accept connections any more: {error}", { error });
      await this.shutdown();
      throw error;
    } finally {
      await Promise.allSettled(served);
    }
  }

  /**
   * Stops accepting, sends what is queued (up to `deadlineMs`), then closes
   * every connection. Registered clients get no synthetic goodbye: the
   * server, not the client, is going away.
   */
  async shutdown(deadlineMs: number = DRAIN_DEADLINE_MS): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#listener?.close();
    this.#flush();
    const peers = [...this.#clients.keys()];
    for (const peer of peers) peer.closeWhenDrained(deadlineMs);
    await Promise.all(peers.map((p) => p.closed));
  }

  #accept(conn: Connection): Promise<void> {
    const peer = new Peer(this.#nextConnectionId++, conn);
    if (this.#clients.size >= this.maxConnections) {
      this.#log.warn("refused connection {conn}: {max} connections already open", {
        conn: peer.id,
        max: this.maxConnections,
      });
      const refusal = privateError(
        "invalid_command",
        `too many connections (limit ${this.maxConnections}); try again later`,
        true,
      );
      this.#stage(peer, encodeEvent(refusal));
      this.#flush();
      peer.closeWhenDrained(DRAIN_DEADLINE_MS);
      return peer.closed;
    }
    const client: Client = {
      peer,
      session: new Session(),
      ending: null,
      lastCommand: null,
      registerTimer: undefined,
    };
    client.registerTimer = setTimeout(() => {
      client.registerTimer = undefined;
      this.#apply(client, client.session.registerTimedOut(this.registerTimeoutMs));
    }, this.registerTimeoutMs);
    this.#clients.set(peer, client);
    this.#hub.add(peer);
    this.#log.debug("connection {conn} opened", { conn: peer.id });
    return this.#readLoop(client);
  }

  async #readLoop(client: Client): Promise<void> {
    const { peer, session } = client;
    const splitter = new LineSplitter(this.maxLineBytes);
    const onLine = (line: string | Uint8Array) => this.#handleLine(client, line);
    const soft = this.#hub.limits.softBytes;
    try {
      // Once shutdown starts, nothing new is reduced: only queued output drains.
      while (!session.ended && !peer.isClosed && !this.#stopping) {
        if (splitter.holding || this.#isBehind(client)) {
          // Backpressure (PROTOCOL.md §10): the client has more unread
          // output than its soft limit, its own replies included. Read
          // none of its commands (not even the rest of the chunk at hand)
          // until it catches up; if it never does, the hub evicts it.
          this.#flush();
          await peer.whenBelow(soft);
          if (peer.isClosed || this.#stopping || this.#failed) break;
          if (splitter.holding) {
            if (!splitter.resume(onLine)) {
              this.#apply(client, session.lineTooLong(this.maxLineBytes));
            }
            continue;
          }
        }
        let chunk: Uint8Array | null;
        try {
          chunk = await peer.conn.read();
        } catch (e) {
          // A client that crashes resets its socket: expected, not srv's fault.
          this.#endWith(client, "debug", `read error: ${(e as Error).message}`);
          break;
        }
        if (peer.isClosed || this.#stopping) break; // evicted, write failed, or shutting down
        if (chunk === null) {
          const unfinished = splitter.pendingBytes;
          splitter.finish(onLine);
          this.#endWith(
            client,
            "debug",
            unfinished > 0 ? `end of stream after an unfinished line` : "end of stream",
          );
          break;
        }
        if (!splitter.pushText(chunk, onLine)) {
          this.#apply(client, session.lineTooLong(this.maxLineBytes));
        }
      }
    } catch (e) {
      // A bug in srv, not anything the client did: drop this connection and
      // keep serving the others.
      this.#endWith(client, "error", "internal error while handling its input", e);
    }
    if (peer.isClosed) {
      // Closed by the hub with output still unsent (drain deadline): the
      // client lost events, which the operator should hear about.
      const level = peer.unsentAtClose > 0 ? "warn" : "debug";
      this.#endWith(client, level, peer.closeReason ?? "closed");
    }
    if (this.#stopping) this.#endWith(client, "debug", "server shutting down");
    this.#disconnect(client);
  }

  /**
   * Whether the client has more output unread than its soft limit, counting
   * what this turn staged for it: it must not be read until it catches up.
   */
  #isBehind(client: Client): boolean {
    const staged = this.#stagedForAll + (this.#stagedFor.get(client.peer) ?? 0);
    return client.peer.pendingBytes + staged > this.#hub.limits.softBytes;
  }

  /** Records why the connection ends; the first cause wins. */
  #endWith(
    client: Client | undefined,
    level: Ending["level"],
    reason: string,
    error?: unknown,
  ): void {
    if (client !== undefined && client.ending === null) client.ending = { level, reason, error };
  }

  #handleLine(client: Client, line: string | Uint8Array): boolean {
    this.#apply(client, client.session.receiveLine(line));
    // Stop splitting the chunk once the session is over (goodbye, fatal),
    // or once the client is too far behind to be read on (see #readLoop).
    return !client.session.ended && !this.#failed && !this.#isBehind(client);
  }

  #apply(client: Client, step: ReturnType<Session["receiveLine"]>): void {
    switch (step.kind) {
      case "ignore":
        return;
      case "reply":
        this.#stage(client.peer, encodeEvent(step.event));
        if (step.close) {
          this.#endWith(client, "warn", `fatal ${step.event.code}: ${step.event.message}`);
          this.#closeAfterTurn(client);
        } else {
          // Expected client mistakes: debug only, so a client sending garbage
          // cannot flood the log.
          this.#log.debug("connection {conn} (kind={kind}, pid={pid}): {code}: {message}", {
            conn: client.peer.id,
            ...this.#who(client),
            code: step.event.code,
            message: step.event.message,
          });
        }
        return;
      case "query":
        this.#stage(client.peer, this.#answer(client, step.command));
        return;
      case "reduce": {
        const pid = client.session.identity?.pid ?? null;
        const events = this.#reduce(step.command, pid);
        client.lastCommand = {
          cmd: step.command.cmd,
          first: events[0]?.version ?? null,
          last: events.at(-1)?.version ?? null,
        };
        const { close } = client.session.afterReduce(step.command, events);
        if (client.session.identity !== null) clearTimeout(client.registerTimer);
        if (close) {
          this.#endWith(client, "debug", "goodbye");
          this.#closeAfterTurn(client);
        }
      }
    }
  }

  /** Runs the reducer and stages its events: patch identity, log, broadcast. */
  #reduce(command: ReducerCommand, registeredPid: number | null): ReducerEvent[] {
    // The server owns its state outright, so the reducer may update it in place.
    const { state, events } = update(this.#state, command, {
      registeredPid,
      newId: this.#newId,
      limits: this.limits,
    }, { owned: true });
    this.#state = state;
    for (const event of events) {
      if (isUnpatchedRegistered(event)) {
        event.launcher_pid = this.identity.pid;
        event.launcher_version = this.identity.version;
        event.instance_id = this.identity.instanceId;
      }
      const json = encodeEvent(event);
      if (isLogged(event)) this.history.append({ version: event.version, json, event });
      this.#stage(null, json);
    }
    return events;
  }

  #answer(client: Client, command: QueryCommand): string | Uint8Array {
    if (command.cmd === "get_events") {
      const since = command.since;
      // At most half the hard limit, so a catch-up alone never evicts the
      // client that asked for it; the envelope around the events is well
      // under 256 bytes.
      // And within what is left of --max-queue-bytes for the private output
      // of all connections together: each reply is its own copy, so 40
      // clients asking for 64 MiB and reading nothing held 2.1 GB (1,024
      // would hold 64 GB). Past it a reply carries fewer events, with
      // truncated: true, and the client resyncs from a (shared) snapshot.
      const unsent = this.#hub.privateBytes + this.#stagedPrivate;
      const budget = Math.min(
        this.maxReplyBytes,
        this.#hub.limits.hardBytes / 2,
        this.#hub.limits.hardBytes - unsent,
      ) - 256;
      const entries = this.history.eventsSince(since, Math.max(0, budget));
      const truncated = entries.cut === true || this.history.isTruncated(since);
      const { instanceId } = this.identity;
      const version = this.#state.eventVersion;
      // From the ring's bytes when it has them: no string per event at all.
      return entries.runs !== undefined
        ? encodeEventListRuns(entries.runs, truncated, instanceId, version)
        : encodeEventListLine(entries.map((e) => e.json), truncated, instanceId, version);
    }
    const info: Event = {
      event: "server_info",
      pid: this.identity.pid,
      server_version: this.identity.version,
      instance_id: this.identity.instanceId,
      uptime_ms: Math.round(this.#now() - this.#startedAt),
      connections: this.#clients.size,
      event_version: this.#state.eventVersion,
      log: this.history.stats(),
      store: this.storePath,
      last_command: client.lastCommand,
      version: 0,
    };
    return encodeEvent(info);
  }

  /** Stages a line: JSON without its `\n`, or (private only) a whole encoded line. */
  #stage(target: Peer | null, json: string | Uint8Array): void {
    this.#stagedTo.push(target);
    this.#stagedJson.push(json);
    // Characters, not bytes, for a string: cheap, and close enough to pause on.
    if (target === null) this.#stagedForAll += json.length + 1;
    else {
      this.#stagedFor.set(target, (this.#stagedFor.get(target) ?? 0) + json.length + 1);
      this.#stagedPrivate += json.length + 1;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Commits the turn's events, then hands every staged line to the hub. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#failed || this.#stagedJson.length === 0) return;
    try {
      this.history.commit(this.#state);
    } catch (error) {
      this.#fail(error);
      return;
    }
    // Consecutive broadcasts become one unit, encoded once for everyone:
    // one allocation per turn instead of one per event. A private line
    // between them keeps its place in its connection's stream. Units stay
    // small (RUN_CHARS): joining big events gains nothing and only makes
    // large short-lived strings that inflate the heap; a big event is a
    // unit of its own, which the hub writes to every peer without a copy.
    const to = this.#stagedTo;
    const lines = this.#stagedJson;
    this.#stagedForAll = 0;
    this.#stagedFor.clear();
    this.#stagedPrivate = 0;
    let run = "";
    let events = 0;
    for (let i = 0; i < lines.length; i++) {
      const json = lines[i];
      const target = to[i];
      if (target === null) {
        if (events > 0 && run.length + json.length > RUN_CHARS) {
          this.#hub.broadcast({ bytes: encoder.encode(run), events });
          run = "";
          events = 0;
        }
        run += json + "\n";
        events++;
        continue;
      }
      if (events > 0) {
        this.#hub.broadcast({ bytes: encoder.encode(run), events });
        run = "";
        events = 0;
      }
      const line = typeof json === "string" ? encoder.encode(json + "\n") : json;
      this.#hub.send(target, { bytes: line, events: 1, private: true });
    }
    if (events > 0) this.#hub.broadcast({ bytes: encoder.encode(run), events });
    // The hub never stages anything, so nothing was added while we walked.
    to.length = 0;
    lines.length = 0;
    this.#hub.flush();
  }

  /** The history could not commit: send nothing more, close everything. */
  #fail(error: unknown): void {
    this.#failed = true;
    this.#stopping = true;
    this.#stagedTo.length = 0;
    this.#stagedJson.length = 0;
    this.#stagedForAll = 0;
    this.#stagedFor.clear();
    this.#stagedPrivate = 0;
    this.#listener?.close();
    for (const peer of this.#clients.keys()) peer.close();
    this.#onFatal(error);
  }

  /**
   * Closes a peer once this turn's output (its own goodbye events or fatal
   * error included) is queued: the microtask runs after the turn's flush,
   * which was scheduled first.
   */
  #closeAfterTurn(client: Client): void {
    queueMicrotask(() => {
      this.#hub.remove(client.peer);
      client.peer.closeWhenDrained(DRAIN_DEADLINE_MS);
    });
  }

  /** kind and pid for logs; "unregistered" and null before register. */
  #who(client: Client): { kind: string; pid: number | null } {
    const identity = client.session.identity;
    return { kind: identity?.kind ?? "unregistered", pid: identity?.pid ?? null };
  }

  /**
   * The one place a connection's end is logged, once, with its cause. Then
   * the synthetic goodbye for a registered pid (PROTOCOL.md §5).
   */
  #disconnect(client: Client): void {
    const { peer, session } = client;
    const who = this.#who(client);
    const ending = client.ending ?? { level: "debug", reason: "closed" };
    const props = { conn: peer.id, ...who, reason: ending.reason };
    if (ending.level === "error") {
      this.#log.error("connection {conn} (kind={kind}, pid={pid}) dropped: {reason}: {error}", {
        ...props,
        error: ending.error,
      });
    } else {
      this.#log[ending.level]("connection {conn} (kind={kind}, pid={pid}) closed: {reason}", props);
    }
    const goodbye = session.disconnect();
    clearTimeout(client.registerTimer);
    this.#clients.delete(peer);
    try {
      if (goodbye !== null && !this.#stopping) this.#reduce(goodbye, who.pid);
    } catch (e) {
      // A bug in srv: say so, but never let it take the process down.
      this.#log.error("synthetic goodbye for connection {conn} failed: {error}", {
        conn: peer.id,
        error: e,
      });
    }
    this.#closeAfterTurn(client);
  }
}
