// The client's reply-matching rule, against a scripted server: each test
// decides exactly which lines arrive in which order (other connections'
// broadcasts before, inside and after a command's output), so every
// interleaving the real server allows is covered deterministically.
import assert from "node:assert/strict";
import { Link, type Reply } from "../../srv/client/_link.ts";
import { ConnectionLostError, ProtocolError } from "../../srv/client/errors.ts";
import { MemoryConnection } from "../../srv/transport/memory.ts";
import { LineSplitter } from "../../srv/core/line_splitter.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The far end of an in-memory connection, played by the test: it decides
 * which lines arrive in which chunk, and sees every line the client wrote.
 */
class ScriptedServer {
  /** The end the client under test is given. */
  readonly client: MemoryConnection;
  readonly #end: MemoryConnection;
  readonly #written: string[] = [];
  #onLine: (() => void) | null = null;

  constructor() {
    [this.client, this.#end] = MemoryConnection.pair();
    this.#pump();
  }

  async #pump(): Promise<void> {
    const split = new LineSplitter(1 << 20);
    try {
      for (let chunk; (chunk = await this.#end.read()) !== null;) {
        split.push(chunk, (line) => {
          this.#written.push(decoder.decode(line));
        });
        this.#onLine?.();
      }
    } catch {
      // The client closed: nothing more to see.
    }
  }

  /** The server sends these events (one chunk, as one read). */
  send(...events: object[]): void {
    void this.#end.write(
      encoder.encode(events.map((e) => JSON.stringify(e) + "\n").join("")),
    );
  }

  /** The server closes its end. */
  hangUp(): void {
    this.#end.close();
  }

  /** Resolves once the client has written at least `n` lines in total. */
  async sent(n: number): Promise<string[]> {
    while (this.#written.length < n) {
      await new Promise<void>((resolve) => (this.#onLine = resolve));
    }
    return this.#written.slice(0, n);
  }

  /** Every line the client has written so far, once what it wrote has been read here. */
  async written(): Promise<string[]> {
    while (this.#end.unread > 0) await new Promise((r) => setTimeout(r, 0));
    await new Promise((r) => setTimeout(r, 0));
    return [...this.#written];
  }
}

const info = (lastCommand: object | null, eventVersion: number) => ({
  event: "server_info",
  pid: 1,
  server_version: "0.1.0",
  instance_id: "i",
  uptime_ms: 0,
  connections: 2,
  event_version: eventVersion,
  log: { oldest: 1, newest: eventVersion, retained: eventVersion },
  store: null,
  last_command: lastCommand,
  version: 0,
});
const created = (id: string, version: number) => ({
  event: "workspace_created",
  workspace_id: id,
  name: "same",
  version,
});

async function withLink(
  fn: (link: Link, conn: ScriptedServer, broadcasts: object[]) => Promise<void>,
): Promise<void> {
  const conn = new ScriptedServer();
  const broadcasts: object[] = [];
  const link = new Link(conn.client, { onBroadcast: (e) => broadcasts.push(e), onClose: () => {} });
  try {
    await fn(link, conn, broadcasts);
  } finally {
    link.close();
    await link.done;
  }
}

/** Registers the link as pid 7: versions 1..3, others' event at 2.5 is not ours. */
async function register(link: Link, conn: ScriptedServer): Promise<Reply> {
  const reply = link.request({ cmd: "register", kind: "tool", pid: 7, version: "t" });
  assert.deepEqual(await conn.sent(2), [
    '{"cmd":"register","kind":"tool","pid":7,"version":"t"}',
    '{"cmd":"get_server_info"}',
  ]);
  conn.send(
    { event: "process_spawned", pid: 7, kind: "tool", client_version: "t", version: 1 },
    { event: "registered", client_id: 1, launcher_pid: 1, launcher_version: "0.1.0", version: 2 },
    info({ cmd: "register", first: 1, last: 2 }, 2),
  );
  return await reply;
}

Deno.test("a command's events are the versions its marker names, whatever interleaves", async () => {
  await withLink(async (link, conn, broadcasts) => {
    assert.equal((await register(link, conn)).events.length, 2);
    assert.equal(link.registeredPid, 7);
    const reply = link.request({ cmd: "create_workspace", name: "same" });
    await conn.sent(4);
    // Another client's identical command lands before ours and after it.
    conn.send(created("theirs-1", 3), created("ours", 4));
    conn.send(created("theirs-2", 5), info({ cmd: "create_workspace", first: 4, last: 4 }, 5));
    assert.deepEqual(await reply, { events: [created("ours", 4)], error: null });
    assert.equal(broadcasts.length, 5, "every broadcast still reaches the stream");
  });
});

Deno.test("a no-op command resolves with no events while others' events of its kind flow", async () => {
  await withLink(async (link, conn) => {
    await register(link, conn);
    const reply = link.request({ cmd: "delete_block", tab_id: "t", block_id: "b" });
    await conn.sent(4);
    conn.send(
      { event: "block_deleted", tab_id: "t", block_id: "b", version: 3 },
      info({ cmd: "delete_block", first: null, last: null }, 3),
    );
    assert.deepEqual(await reply, { events: [], error: null });
  });
});

Deno.test("pipelined commands and queries are answered in order, errors as values", async () => {
  await withLink(async (link, conn) => {
    await register(link, conn);
    const a = link.request({ cmd: "create_tab", workspace_id: "w", name: "x" });
    const q = link.request({ cmd: "get_events", since: 0 });
    const b = link.request({ cmd: "rename_tab", tab_id: "ghost", name: "y" });
    // create_tab + marker, get_events, rename_tab + marker
    await conn.sent(7);
    const tab = { event: "tab_created", workspace_id: "w", tab_id: "t1", name: "x", version: 3 };
    const active = { event: "active_tab_changed", workspace_id: "w", tab_id: "t1", version: 4 };
    const list = {
      event: "event_list",
      events: [],
      truncated: false,
      instance_id: "i",
      version: 4,
    };
    const refused = {
      event: "error",
      code: "invalid_command",
      message: "RenameTab: tab not found: ghost",
      fatal: false,
      version: 6,
    };
    const othersError = { ...refused, message: "RenameTab: tab not found: other", version: 5 };
    conn.send(tab);
    conn.send(active, info({ cmd: "create_tab", first: 3, last: 4 }, 4), list, othersError);
    conn.send(refused, info({ cmd: "rename_tab", first: 6, last: 6 }, 6));
    assert.deepEqual(await a, { events: [tab, active], error: null });
    assert.deepEqual(await q, { events: [list], error: null });
    assert.deepEqual(await b, { events: [refused], error: refused });
  });
});

Deno.test("a command refused before the reducer gets its private error, not a stale range", async () => {
  await withLink(async (link, conn) => {
    await register(link, conn);
    // A launcher-pipe name parses, so it is sent; pretend this server refuses it privately.
    const reply = link.request({ cmd: "report_exit" });
    await conn.sent(4);
    const parseError = {
      event: "error",
      code: "invalid_command",
      message: "parse failed: unknown command `report_exit`",
      fatal: false,
      version: 0,
    };
    conn.send(parseError, info({ cmd: "register", first: 1, last: 2 }, 2));
    assert.deepEqual(await reply, { events: [parseError], error: parseError });
  });
});

Deno.test("a command the client cannot encode validly is refused locally, never sent", async () => {
  await withLink(async (link, conn) => {
    await register(link, conn);
    const reply = await link.request({
      cmd: "reorder_tab",
      workspace_id: "w",
      tab_id: "t",
      new_index: -1,
    });
    assert.equal(reply.error?.code, "invalid_command");
    assert.match(reply.error!.message, /^parse failed: invalid value for `new_index`/);
    assert.equal((await conn.written()).length, 2, "only the register and its marker went out");
  });
});

Deno.test("a register the reducer refuses: the broadcast error naming the pid", async () => {
  await withLink(async (link, conn) => {
    const reply = link.request({ cmd: "register", kind: "tool", pid: 7, version: "t" });
    await conn.sent(2);
    const othersRefusal = {
      event: "error",
      code: "already_registered",
      message: "pid 8 is already registered with srv",
      fatal: false,
      version: 4,
    };
    const ours = { ...othersRefusal, message: "pid 7 is already registered with srv", version: 5 };
    conn.send(othersRefusal, ours, {
      event: "error",
      code: "not_registered",
      message: "Command before Register",
      fatal: false,
      version: 0,
    });
    assert.deepEqual(await reply, { events: [ours], error: ours });
    assert.equal(link.registeredPid, null);
  });
});

Deno.test("a refused register is the server's own event, whatever its message says", async () => {
  await withLink(async (link, conn) => {
    const reply = link.request({ cmd: "register", kind: "tool", pid: 7, version: "t" });
    await conn.sent(2);
    const refusal = {
      event: "error",
      code: "already_registered",
      message: "reworded by a later srv",
      fatal: false,
      version: 9,
    };
    conn.send(refusal, {
      event: "error",
      code: "not_registered",
      message: "Command before Register",
      fatal: false,
      version: 0,
    });
    assert.deepEqual(await reply, { events: [refusal], error: refusal });
    assert.equal(link.registeredPid, null);
  });
});

Deno.test("a server without last_command is a protocol error, not a guess", async () => {
  await withLink(async (link, conn) => {
    const reply = link.request({ cmd: "register", kind: "tool", pid: 7, version: "t" });
    await conn.sent(2);
    const old = info(null, 2) as Record<string, unknown>;
    delete old.last_command;
    conn.send(old);
    await assert.rejects(reply, ProtocolError);
  });
});

Deno.test("a close settles everything: pending requests reject, goodbye resolves", async () => {
  await withLink(async (link, conn) => {
    await register(link, conn);
    const pending = link.request({ cmd: "create_workspace", name: "w" });
    const goodbye = link.request({ cmd: "goodbye" });
    await conn.sent(5);
    const exited = { event: "process_exited", pid: 7, code: 0, version: 3 };
    conn.send({ event: "process_exited", pid: 99, code: 0, version: 2 }, exited);
    conn.hangUp();
    await assert.rejects(pending, ConnectionLostError);
    assert.deepEqual(await goodbye, { events: [exited], error: null });
    await assert.rejects(link.request({ cmd: "ping", nonce: 1 }), ConnectionLostError);
  });
});
