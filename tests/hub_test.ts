// Unit tests of delivery (PROTOCOL.md §7) with a scripted connection: each
// write stays pending until the test completes or fails it, so "the socket's
// buffer is full" is a state the test controls instead of a race.
import assert from "node:assert/strict";
import { Hub, Peer, single } from "../mod.ts";
import type { Connection, EvictionReport } from "../mod.ts";

/** A connection whose writes resolve only when the test says so. */
class ScriptedConnection implements Connection {
  readonly writes: Uint8Array[] = [];
  closed = false;
  #pending: { resolve: () => void; reject: (e: Error) => void }[] = [];

  read(): Promise<Uint8Array | null> {
    return Promise.resolve(null);
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("closed"));
    this.writes.push(bytes);
    return new Promise((resolve, reject) => this.#pending.push({ resolve, reject }));
  }

  /** The socket took the oldest pending write. */
  completeWrite(): void {
    this.#pending.shift()?.resolve();
  }

  failWrite(): void {
    this.#pending.shift()?.reject(new Deno.errors.BrokenPipe("peer gone"));
  }

  get pendingWrites(): number {
    return this.#pending.length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Like Deno: closing a resource cancels its pending operations.
    for (const p of this.#pending.splice(0)) p.reject(new Deno.errors.Interrupted("canceled"));
  }
}

const text = new TextEncoder();
const line = (s: string) => single(text.encode(s + "\n"));
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
/** Lets the peers' write loops run. */
const settle = () => new Promise<void>((r) => setTimeout(r, 0));

function setup(limits = { maxEvents: 4, maxBytes: 1024 }) {
  const evicted: [Peer, EvictionReport][] = [];
  const hub = new Hub(limits, (peer, report) => evicted.push([peer, report]));
  const make = (id: number) => {
    const conn = new ScriptedConnection();
    const peer = new Peer(id, conn);
    hub.add(peer);
    return { conn, peer };
  };
  return { hub, evicted, make };
}

Deno.test("hub: one turn's lines go out as one write per peer, the same bytes for a lone line", async () => {
  const { hub, make } = setup();
  const a = make(1);
  const b = make(2);
  const shared = line("x");
  hub.broadcast(shared);
  hub.flush();
  assert.equal(a.conn.writes[0], shared.bytes, "a single unit is written without a copy");
  assert.equal(b.conn.writes[0], shared.bytes);
  a.conn.completeWrite();
  b.conn.completeWrite();
  await settle();
  hub.broadcast(line("1"));
  hub.send(a.peer, line("private"));
  hub.broadcast(line("2"));
  hub.flush();
  assert.equal(a.conn.writes.length, 2);
  assert.equal(decode(a.conn.writes[1]), "1\nprivate\n2\n");
  assert.equal(decode(b.conn.writes[1]), "1\n2\n");
  a.peer.close();
  b.peer.close();
});

Deno.test("hub: a peer whose write never completes is evicted once it falls past the event bound", async () => {
  const { hub, evicted, make } = setup({ maxEvents: 3, maxBytes: 1 << 20 });
  const stuck = make(1);
  const fine = make(2);
  for (let i = 0; i < 10; i++) {
    hub.broadcast(line(`e${i}`));
    hub.flush();
    // The healthy peer's socket takes everything; the stuck one's takes nothing.
    fine.conn.completeWrite();
    await settle();
  }
  assert.equal(evicted.length, 1, "evicted exactly once");
  const [peer, report] = evicted[0];
  assert.equal(peer, stuck.peer);
  // Judged on the backlog before each turn: 4 unsent events is past 3.
  assert.deepEqual(report, { queuedEvents: 5, queuedBytes: 15 });
  assert.ok(stuck.conn.closed, "the connection is closed, cancelling its pending write");
  assert.ok(stuck.peer.isClosed);
  assert.equal(stuck.peer.pendingBytes, 0, "its queue is released");
  assert.equal(hub.size, 1);
  assert.equal(fine.conn.writes.length, 10, "the healthy peer got every event");
  assert.equal(fine.peer.pendingEvents, 0);
  fine.peer.close();
});

Deno.test("hub: the byte bound evicts too, counting the write in flight", async () => {
  const { hub, evicted, make } = setup({ maxEvents: 1000, maxBytes: 100 });
  const stuck = make(1);
  const bytes = new Uint8Array(40).fill(0x61);
  bytes[39] = 0x0a;
  const big = single(bytes);
  hub.broadcast(big);
  hub.flush();
  await settle();
  assert.equal(stuck.conn.pendingWrites, 1, "40 bytes handed to the socket, not yet taken");
  hub.broadcast(big);
  hub.broadcast(big);
  hub.flush();
  hub.broadcast(big);
  hub.flush();
  assert.equal(evicted.length, 0, "backlog 120 = 40 in flight + 80 queued, minus the largest 40");
  hub.broadcast(big);
  assert.equal(evicted.length, 1, "backlog 160 minus the largest 40 is past 100");
  assert.deepEqual(evicted[0][1], { queuedEvents: 5, queuedBytes: 200 });
  hub.flush();
});

Deno.test("hub: one event larger than the byte bound still reaches a peer that has caught up", async () => {
  const { hub, evicted, make } = setup({ maxEvents: 100, maxBytes: 64 });
  const a = make(1);
  const snapshot = single(new Uint8Array(1000).fill(0x61));
  hub.broadcast(snapshot);
  hub.flush();
  assert.equal(evicted.length, 0);
  // While the big write is under way, a small event still fits behind it.
  hub.broadcast(line("small"));
  assert.equal(evicted.length, 0);
  a.conn.completeWrite();
  await settle();
  assert.equal(decode(a.conn.writes[1]), "small\n");
  a.conn.completeWrite();
  await settle();
  assert.equal(a.peer.pendingBytes, 0);
  a.peer.close();
});

Deno.test("hub: a failed write ends output only; the peer closes when the server lets it go", async () => {
  const { hub, evicted, make } = setup();
  const a = make(1);
  hub.broadcast(line("x"));
  hub.flush();
  a.conn.failWrite();
  await settle();
  assert.match(a.peer.outputFailure ?? "", /peer gone/);
  assert.ok(!a.peer.isClosed, "still open: the client's last commands may be unread");
  assert.ok(!a.conn.closed);
  hub.broadcast(line("y"));
  hub.flush();
  assert.equal(a.conn.writes.length, 1, "nothing more is written");
  assert.equal(a.peer.pendingEvents, 0, "nor held");
  assert.equal(evicted.length, 0, "a dead peer is not an eviction");
  a.peer.closeWhenDrained(60_000);
  await a.peer.closed;
  assert.ok(a.conn.closed);
});

Deno.test("hub: closeWhenDrained waits for the queue, or for the deadline when the peer never reads", async () => {
  const { hub, make } = setup();
  const reader = make(1);
  const stalled = make(2);
  hub.broadcast(line("bye"));
  hub.flush();
  reader.peer.closeWhenDrained(60_000);
  stalled.peer.closeWhenDrained(10);
  assert.ok(!reader.peer.isClosed, "not before its output is written");
  reader.conn.completeWrite();
  await reader.peer.closed;
  assert.ok(reader.conn.closed);
  await stalled.peer.closed;
  assert.ok(stalled.conn.closed, "the deadline closed the peer that never read");
  assert.match(stalled.peer.closeReason ?? "", /deadline/);
  assert.equal(stalled.peer.unsentAtClose, 1, "it lost its one event");
  assert.equal(reader.peer.unsentAtClose, 0);
});

Deno.test("hub: a unit of many events counts every event, from the next turn on", () => {
  const { hub, evicted, make } = setup({ maxEvents: 10, maxBytes: 1 << 20 });
  const a = make(1);
  const turn = (n: number) => {
    const bytes = text.encode("e\n".repeat(n));
    return { bytes, events: n, largest: 2 };
  };
  hub.broadcast(turn(6));
  hub.broadcast(turn(4));
  hub.flush();
  assert.equal(a.peer.pendingEvents, 10);
  hub.broadcast(turn(1));
  hub.flush();
  assert.equal(evicted.length, 0, "a backlog of 10 events is the limit, not past it");
  hub.broadcast(turn(1));
  assert.equal(evicted.length, 1, "a backlog of 11 is past it");
  assert.deepEqual(evicted[0][1], { queuedEvents: 12, queuedBytes: 24 });
});

Deno.test("hub: one turn larger than the bound does not evict peers that keep up", async () => {
  const { hub, evicted, make } = setup({ maxEvents: 10, maxBytes: 64 });
  const a = make(1);
  const b = make(2);
  // A client pipelined thousands of commands: one turn yields far more
  // than the bound for everyone.
  hub.broadcast({ bytes: text.encode("e\n".repeat(500)), events: 500, largest: 2 });
  hub.flush();
  assert.equal(evicted.length, 0);
  a.conn.completeWrite();
  b.conn.completeWrite();
  await settle();
  hub.broadcast(line("next"));
  hub.flush();
  assert.equal(evicted.length, 0, "both took the big turn, so there is no backlog");
  assert.equal(decode(a.conn.writes[1]), "next\n");
  a.peer.close();
  b.peer.close();
});

Deno.test("hub: a pending reply keeps its allowance until it is written; a backlog past it evicts", () => {
  const { hub, evicted, make } = setup({ maxEvents: 100, maxBytes: 64 });
  const reader = make(1);
  const hog = make(2);
  const reply = () => single(new Uint8Array(500).fill(0x61));
  const broadcast100 = () => hub.broadcast(single(new Uint8Array(100).fill(0x62)));
  hub.broadcast(line("first"));
  hub.send(reader.peer, reply(), true);
  hub.send(hog.peer, reply(), true);
  hub.send(hog.peer, reply(), true); // asks again without reading
  hub.flush();
  assert.equal(evicted.length, 0, "nothing is judged within the turn that queued it");
  broadcast100();
  hub.flush();
  assert.deepEqual(evicted.map(([p]) => p), [hog.peer], "the hog's second reply is backlog");
  // The reader's reply is still unsent (its socket took nothing) and still
  // exempt: only what piles up behind it counts.
  broadcast100();
  hub.flush();
  assert.equal(evicted.length, 1);
  broadcast100();
  assert.equal(evicted.length, 2, "past the bound beyond its reply and largest event");
  assert.equal(evicted[1][0], reader.peer);
});
