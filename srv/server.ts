/**
 * The imperative shell: accept → frame → session → reduce → log → hub. One
 * command is reduced, logged and queued before the next is looked at, so all
 * clients see one order (PROTOCOL.md §7). Output is staged for the current
 * turn; at the end of the turn the event history commits, then every
 * connection gets one write, so nothing is broadcast before it is durable.
 *
 * @module
 */

import { getLogger, type Logger } from "../deps.ts";
import { type EventHistory, EventLog } from "./event_log.ts";
import { DEFAULT_MAX_LINE_BYTES, LineSplitter } from "./framing.ts";
import { DEFAULT_QUEUE_LIMITS, Hub, Peer, type QueueLimits } from "./hub.ts";
import {
  encodeEvent,
  encodeEventList,
  type Event,
  isLogged,
  type LastCommand,
  type QueryCommand,
  type ReducerCommand,
  type RegisteredEvent,
} from "./protocol.ts";
import { type ReducerEvent, update } from "./reducer.ts";
import { privateError, Session } from "./session.ts";
import { initialState, type State } from "./state.ts";
import type { Connection, Listener } from "./transport/transport.ts";

/** Default of `--max-connections`. */
export const DEFAULT_MAX_CONNECTIONS = 1024;

/** How long a closing connection may take to drain its queue, in ms. */
export const DRAIN_DEADLINE_MS = 2000;

/** Who the server is: filled into `registered`, `server_info` and `event_list`. */
export interface ServerIdentity {
  readonly pid: number;
  readonly version: string;
  /** Fresh for every server start, so clients can tell a restart apart. */
  readonly instanceId: string;
}

/** Everything a {@linkcode Server} is built from. */
export interface ServerOptions {
  readonly identity: ServerIdentity;
  /** Where logged events go; an in-memory ring when absent. */
  readonly history?: EventHistory;
  /** Where to start (a state rebuilt from a store); fresh when absent. */
  readonly initialState?: State;
  /** Shown as `server_info.store`. */
  readonly storePath?: string | null;
  readonly maxLineBytes?: number;
  readonly maxConnections?: number;
  readonly queueLimits?: QueueLimits;
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

interface Client {
  readonly peer: Peer;
  readonly session: Session;
  /** What `server_info.last_command` reports to this connection. */
  lastCommand: LastCommand | null;
}

const encoder = new TextEncoder();

/** The `registered` fields the reducer leaves as placeholders. */
function isUnpatchedRegistered(event: ReducerEvent): event is RegisteredEvent {
  return event.event === "registered" && event.launcher_pid === 0 && event.launcher_version === "";
}

/**
 * A running srv: give it a {@linkcode Listener} and it serves the protocol
 * on every connection until {@linkcode Server.shutdown}.
 *
 * @example
 * ```ts ignore
 * import { Server } from "./server.ts";
 * import { listenUnix } from "./transport/unix.ts";
 * const server = new Server({
 *   identity: { pid: Deno.pid, version: "0.1.0", instanceId: crypto.randomUUID() },
 * });
 * const done = server.serve(listenUnix("/tmp/srv-demo/srv.sock"));
 * // ... later
 * await server.shutdown();
 * await done;
 * ```
 */
export class Server {
  readonly identity: ServerIdentity;
  readonly history: EventHistory;
  readonly storePath: string | null;
  readonly maxLineBytes: number;
  readonly maxConnections: number;
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
  /** Output of this turn, sent once the history has committed it. */
  #staged: [Peer | null, Uint8Array][] = [];
  #flushScheduled = false;
  #stopping = false;
  #failed = false;

  constructor(options: ServerOptions) {
    this.identity = options.identity;
    this.history = options.history ?? new EventLog();
    this.storePath = options.storePath ?? null;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#state = options.initialState ?? initialState();
    this.#newId = options.newId ?? (() => crypto.randomUUID());
    this.#now = options.now ?? (() => performance.now());
    this.#startedAt = this.#now();
    this.#onFatal = options.onFatal ?? (() => {});
    this.#hub = new Hub(options.queueLimits ?? DEFAULT_QUEUE_LIMITS, (peer, report) => {
      const who = this.#clients.get(peer)?.session.identity;
      this.#log.warn(
        "evicted slow connection {conn} (kind={kind}, pid={pid}): {events} events / {bytes} bytes unsent",
        {
          conn: peer.id,
          kind: who?.kind ?? "unregistered",
          pid: who?.pid ?? null,
          events: report.queuedEvents,
          bytes: report.queuedBytes,
        },
      );
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

  /** Accepts and serves connections until the listener closes. */
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
    const client: Client = { peer, session: new Session(), lastCommand: null };
    this.#clients.set(peer, client);
    this.#hub.add(peer);
    this.#log.debug("connection {conn} opened", { conn: peer.id });
    return this.#readLoop(client);
  }

  async #readLoop(client: Client): Promise<void> {
    const { peer, session } = client;
    const splitter = new LineSplitter(this.maxLineBytes);
    const onLine = (line: Uint8Array) => this.#handleLine(client, line);
    let reason = "end of stream";
    try {
      while (!session.ended && !peer.isClosed) {
        const chunk = await peer.conn.read();
        if (peer.isClosed) break; // evicted or failed while reading
        if (chunk === null) {
          splitter.finish(onLine);
          break;
        }
        if (!splitter.push(chunk, onLine)) {
          this.#apply(client, session.lineTooLong(this.maxLineBytes));
          reason = "line too long";
        }
      }
    } catch (e) {
      reason = `read error: ${(e as Error).message}`;
    }
    this.#disconnect(client, reason);
  }

  #handleLine(client: Client, line: Uint8Array): boolean {
    this.#apply(client, client.session.receiveLine(line));
    // Stop splitting the chunk once the session is over (goodbye, fatal).
    return !client.session.ended && !this.#failed;
  }

  #apply(client: Client, step: ReturnType<Session["receiveLine"]>): void {
    switch (step.kind) {
      case "ignore":
        return;
      case "reply":
        this.#stage(client.peer, encodeEvent(step.event));
        if (step.close) this.#closeAfterTurn(client);
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
        if (client.session.afterReduce(step.command, events).close) this.#closeAfterTurn(client);
      }
    }
  }

  /** Runs the reducer and stages its events: patch identity, log, broadcast. */
  #reduce(command: ReducerCommand, registeredPid: number | null): ReducerEvent[] {
    // The server owns its state outright, so the reducer may update it in place.
    const { state, events } = update(this.#state, command, {
      registeredPid,
      newId: this.#newId,
    }, { owned: true });
    this.#state = state;
    for (const event of events) {
      if (isUnpatchedRegistered(event)) {
        event.launcher_pid = this.identity.pid;
        event.launcher_version = this.identity.version;
        event.instance_id = this.identity.instanceId;
      }
      const json = encodeEvent(event);
      if (isLogged(event)) this.history.append({ version: event.version, json });
      this.#stage(null, json);
    }
    return events;
  }

  #answer(client: Client, command: QueryCommand): string {
    if (command.cmd === "get_events") {
      const since = command.since;
      const entries = this.history.eventsSince(since);
      return encodeEventList(
        entries.map((e) => e.json),
        this.history.isTruncated(since),
        this.identity.instanceId,
        this.#state.eventVersion,
      );
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

  #stage(target: Peer | null, json: string): void {
    this.#staged.push([target, encoder.encode(json + "\n")]);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Commits the turn's events, then hands every staged line to the hub. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#failed || this.#staged.length === 0) return;
    try {
      this.history.commit(this.#state);
    } catch (error) {
      this.#fail(error);
      return;
    }
    const staged = this.#staged;
    this.#staged = [];
    for (const [target, bytes] of staged) {
      if (target === null) this.#hub.broadcast(bytes);
      else this.#hub.send(target, bytes, true);
    }
    this.#hub.flush();
  }

  /** The history could not commit: send nothing more, close everything. */
  #fail(error: unknown): void {
    this.#failed = true;
    this.#stopping = true;
    this.#staged = [];
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

  #disconnect(client: Client, reason: string): void {
    const { peer, session } = client;
    const pid = session.identity?.pid ?? null;
    const goodbye = session.disconnect();
    this.#clients.delete(peer);
    this.#log.debug("connection {conn} closed ({reason}), kind={kind} pid={pid}", {
      conn: peer.id,
      reason,
      kind: session.identity?.kind ?? "unregistered",
      pid,
    });
    if (goodbye !== null && !this.#stopping) this.#reduce(goodbye, pid);
    this.#closeAfterTurn(client);
  }
}
