// Unit tests of delivery (docs/PROTOCOL.md §7, §10): the eviction policy as a
// table, then the hub with a scripted connection: each
// write stays pending until the test completes or fails it, so "the socket's
// buffer is full" is a state the test controls instead of a race.
import assert from "node:assert/strict";
import {
  COALESCE_BYTES,
  judgeOutput,
  type OutputLimits,
  Peer,
  SharedCharge,
  single,
} from "../../srv/server/peer.ts";
import { Hub } from "../../srv/server/hub.ts";
import type { Connection } from "../../srv/transport/transport.ts";
import type { EvictionReport } from "../../srv/server/peer.ts";

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
const blob = (n: number, fill = 0x61) => {
  const bytes = new Uint8Array(n).fill(fill);
  bytes[n - 1] = 0x0a;
  return single(bytes);
};

Deno.test("policy: one row per rule of judgeOutput", () => {
  const limits: OutputLimits = { hardBytes: 1000, softBytes: 100, softMs: 5000 };
  const rows: [rule: string, pending: number, since: number | null, now: number, expect: string][] =
    [
      ["past the hard limit: evict at once", 1001, null, 0, "evict hard"],
      ["past the hard limit while the soft clock runs: evict", 1001, 0, 1, "evict hard"],
      ["at the hard limit: not past it", 1000, 0, 1, "keep since 0"],
      ["within the soft limit: keep, no clock", 100, null, 7, "keep since null"],
      ["back within the soft limit: the clock stops", 50, 3, 7, "keep since null"],
      [
        "past the soft limit for the first time: the clock starts now",
        101,
        null,
        7,
        "keep since 7",
      ],
      ["past it for less than softMs: keep, the clock runs on", 500, 7, 5006, "keep since 7"],
      ["past it for softMs: evict", 500, 7, 5007, "evict soft"],
      ["past it for longer: evict", 101, 7, 60_000, "evict soft"],
    ];
  for (const [rule, pending, since, now, expect] of rows) {
    const verdict = judgeOutput(pending, since, now, limits);
    const got = verdict.evict
      ? `evict ${/hard/.test(verdict.reason) ? "hard" : "soft"}`
      : `keep since ${verdict.overSoftSince}`;
    assert.equal(got, expect, rule);
  }
  const soft = judgeOutput(500, 7, 5007, limits);
  assert.ok(soft.evict);
  assert.equal(
    soft.reason,
    "500 bytes unsent, past the soft limit of 100 bytes for 5000 ms (limit 5000 ms)",
  );
});

/** A hub whose soft-limit clock the test moves by hand. */
function setup(limits: OutputLimits = { hardBytes: 1 << 20, softBytes: 1 << 16, softMs: 60_000 }) {
  const evicted: [Peer, EvictionReport][] = [];
  const clock = { now: 0 };
  const hub = new Hub(limits, (peer, report) => evicted.push([peer, report]), () => clock.now);
  const made: Peer[] = [];
  const make = (id: number) => {
    const conn = new ScriptedConnection();
    const peer = new Peer(id, conn);
    hub.add(peer);
    made.push(peer);
    return { conn, peer };
  };
  /** Closes every peer, so no soft-limit timer outlives the test. */
  const done = () => made.forEach((p) => p.close());
  return { hub, evicted, make, clock, done };
}

Deno.test("hub: one turn's small lines go out as one write per peer, the same bytes for a lone line", async () => {
  const { hub, make, done } = setup();
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
  done();
});

Deno.test("hub: a large broadcast is written to every peer as the one shared buffer, never copied", async () => {
  const { hub, make, done } = setup({ hardBytes: 1 << 30, softBytes: 1 << 30, softMs: 60_000 });
  const peers = Array.from({ length: 100 }, (_, i) => make(i));
  const snapshot = blob(COALESCE_BYTES * 4);
  hub.broadcast(line("before"));
  hub.broadcast(snapshot);
  hub.broadcast(line("after"));
  hub.flush();
  for (const p of peers) {
    assert.equal(decode(p.conn.writes[0]), "before\n", "small units before it go first");
    p.conn.completeWrite();
  }
  await settle();
  for (const p of peers) {
    assert.equal(p.conn.writes[1], snapshot.bytes, "the big unit itself, not a copy");
    assert.equal(p.peer.pendingBytes, snapshot.bytes.length + 6, "counted in full per peer");
    p.conn.completeWrite();
  }
  await settle();
  for (const p of peers) assert.equal(decode(p.conn.writes[2]), "after\n");
  done();
});

Deno.test("hub: small units behind a write are joined into writes of at most COALESCE_BYTES", async () => {
  const { hub, make, done } = setup({ hardBytes: 1 << 30, softBytes: 1 << 30, softMs: 60_000 });
  const a = make(1);
  hub.broadcast(line("first"));
  hub.flush();
  const unit = blob(COALESCE_BYTES / 8);
  for (let i = 0; i < 20; i++) hub.broadcast(unit);
  hub.flush();
  assert.equal(a.peer.pendingEvents, 21);
  while (a.conn.pendingWrites > 0) {
    a.conn.completeWrite();
    await settle();
  }
  const sizes = a.conn.writes.slice(1).map((w) => w.length);
  assert.deepEqual(sizes, [COALESCE_BYTES, COALESCE_BYTES, COALESCE_BYTES / 2]);
  assert.equal(a.peer.pendingBytes, 0);
  done();
});

Deno.test("hub: past the hard limit a peer is evicted at once, counting the write in flight", async () => {
  const { hub, evicted, make, done } = setup({ hardBytes: 100, softBytes: 50, softMs: 60_000 });
  const stuck = make(1);
  const fine = make(2);
  for (let i = 0; i < 3; i++) {
    hub.broadcast(blob(40));
    hub.flush();
    fine.conn.completeWrite();
    await settle();
  }
  assert.equal(evicted.length, 1, "120 unsent bytes: 40 in flight and 80 queued");
  const [peer, report] = evicted[0];
  assert.equal(peer, stuck.peer);
  assert.deepEqual(report, {
    queuedEvents: 3,
    queuedBytes: 120,
    reason: "120 bytes unsent, past the hard limit of 100 bytes",
  });
  assert.match(stuck.peer.closeReason ?? "", /^evicted: 120 bytes unsent, past the hard limit/);
  assert.ok(stuck.conn.closed, "the connection is closed, cancelling its pending write");
  assert.equal(stuck.peer.pendingBytes, 0, "its queue is released");
  assert.equal(stuck.peer.unsentAtClose, 3);
  assert.equal(hub.size, 1);
  assert.equal(fine.conn.writes.length, 3, "the healthy peer got every event");
  done();
});

Deno.test("hub: a reply counts like a broadcast", () => {
  const { hub, evicted, make, done } = setup({ hardBytes: 100, softBytes: 50, softMs: 60_000 });
  const asker = make(1);
  hub.send(asker.peer, blob(60));
  hub.send(asker.peer, blob(60));
  assert.equal(evicted.length, 1);
  assert.equal(evicted[0][0], asker.peer);
  done();
});

Deno.test("hub: past the soft limit for softMs a peer is evicted; one that catches up in time is not", async () => {
  const { hub, evicted, make, clock, done } = setup({
    hardBytes: 1000,
    softBytes: 100,
    softMs: 5000,
  });
  const slow = make(1);
  const stalled = make(2);
  hub.broadcast(blob(150));
  hub.flush();
  clock.now = 4000;
  slow.conn.completeWrite(); // slow reads it within 5 s: its clock stops
  await settle();
  clock.now = 4500;
  hub.broadcast(blob(150)); // slow is past the soft limit again: a new clock, from 4500
  hub.flush();
  clock.now = 5000;
  hub.broadcast(line("x")); // judged at 5000: stalled has been past it for 5000 ms
  assert.deepEqual(evicted.map(([p]) => p), [stalled.peer]);
  assert.match(evicted[0][1].reason, /past the soft limit of 100 bytes for 5000 ms/);
  clock.now = 9000;
  hub.broadcast(line("y"));
  assert.equal(evicted.length, 1, "slow has been past it for 4500 ms only");
  clock.now = 9500;
  hub.broadcast(line("z"));
  assert.equal(evicted.length, 2);
  assert.equal(evicted[1][0], slow.peer);
  done();
});

Deno.test("hub: the soft limit's time runs out with no traffic at all: a timer evicts the peer", async () => {
  const evicted: EvictionReport[] = [];
  const hub = new Hub(
    { hardBytes: 1000, softBytes: 10, softMs: 30 },
    (_peer, report) => evicted.push(report),
  );
  const conn = new ScriptedConnection();
  const peer = new Peer(1, conn);
  hub.add(peer);
  hub.broadcast(blob(20));
  hub.flush();
  await peer.closed;
  assert.equal(evicted.length, 1);
  assert.match(evicted[0].reason, /past the soft limit of 10 bytes for \d+ ms \(limit 30 ms\)/);
  assert.ok(conn.closed);
});

Deno.test("hub: the callback given to add hears its own peer's eviction, after the hub's", () => {
  const heard: string[] = [];
  const hub = new Hub(
    { hardBytes: 1000, softBytes: 10, softMs: 60_000 },
    (peer) => heard.push(`hub ${peer.id}`),
  );
  const fast = new Peer(1, new ScriptedConnection());
  const slow = new Peer(2, new ScriptedConnection());
  hub.add(fast, () => heard.push("own 1"));
  hub.add(slow, (report) => heard.push(`own 2: ${report.queuedBytes}`));
  hub.send(slow, blob(2000));
  assert.deepEqual(heard, ["hub 2", "own 2: 2000"]);
  assert.ok(slow.isClosed && !fast.isClosed);
  fast.close();
});

Deno.test("hub: whenBelow waits for the peer to read, or for its end", async () => {
  const { hub, make, done } = setup({ hardBytes: 1000, softBytes: 100, softMs: 60_000 });
  const a = make(1);
  const b = make(2);
  hub.broadcast(blob(150));
  hub.flush();
  let aGoes = false;
  const aBelow = a.peer.whenBelow(100).then(() => (aGoes = true));
  const bBelow = b.peer.whenBelow(100);
  await settle();
  assert.equal(aGoes, false, "150 bytes unread");
  a.conn.completeWrite();
  await aBelow;
  b.peer.close();
  await bBelow;
  await a.peer.whenBelow(100); // already below: at once
  done();
});

Deno.test("hub: a failed write ends output only; the peer closes when the server lets it go", async () => {
  const { hub, evicted, make, done } = setup();
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
  done();
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

Deno.test("hub: one turn far past the soft limit does not evict peers that keep up", async () => {
  const { hub, evicted, make, clock, done } = setup({
    hardBytes: 1 << 20,
    softBytes: 64,
    softMs: 1000,
  });
  const a = make(1);
  const b = make(2);
  // A client pipelined thousands of commands: one turn yields far more
  // than the soft limit for everyone.
  hub.broadcast({ bytes: text.encode("e\n".repeat(500)), events: 500 });
  hub.flush();
  clock.now = 900;
  a.conn.completeWrite();
  b.conn.completeWrite();
  await settle();
  clock.now = 5000;
  hub.broadcast(line("next"));
  hub.flush();
  assert.equal(evicted.length, 0, "both took the big turn in time");
  assert.equal(decode(a.conn.writes[1]), "next\n");
  done();
});

Deno.test("hub: a shared private unit counts once in privateBytes while any peer holds it, in full for each holder", async () => {
  const { hub, make, done } = setup({ hardBytes: 1 << 30, softBytes: 1 << 30, softMs: 60_000 });
  const a = make(1);
  const b = make(2);
  const c = make(3);
  const bytes = blob(COALESCE_BYTES * 2).bytes;
  const charge = new SharedCharge(bytes.length);
  const snapshot = { bytes, events: 1, private: true, shared: charge };
  hub.send(a.peer, snapshot);
  hub.send(b.peer, snapshot);
  hub.send(b.peer, { ...line("small private tail"), private: true });
  hub.send(c.peer, snapshot);
  hub.flush();
  const tail = "small private tail\n".length;
  assert.equal(hub.privateBytes, bytes.length + tail, "three holders, one buffer: counted once");
  assert.equal(a.peer.privateBytes, bytes.length, "in full for its holder");
  assert.equal(a.conn.writes[0], bytes, "written uncopied");
  a.conn.completeWrite();
  await settle();
  assert.equal(hub.privateBytes, bytes.length + tail, "still held by b and c");
  assert.equal(a.peer.privateBytes, 0);
  c.peer.close("dropped");
  assert.equal(hub.privateBytes, bytes.length + tail, "b holds it yet");
  b.conn.completeWrite();
  await settle();
  assert.equal(charge.holders, 0);
  assert.equal(b.peer.privateBytes, tail);
  assert.equal(hub.privateBytes, tail, "the last holder wrote it: only b's own tail is left");
  b.conn.completeWrite();
  await settle();
  assert.equal(hub.privateBytes, 0);
  done();
});
