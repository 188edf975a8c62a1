// Delivery scenarios shared by tests/e2e/transport/hostile_delivery_test.ts (once, in
// `deno task test`) and tests/soak.ts (repeated, with figures): clients
// that keep up must never be evicted, one that stops reading must be.
import { type Json, type SrvProcess, TestClient } from "./_harness.ts";
import { waitUntil } from "./_proc.ts";

const encoder = new TextEncoder();

/** What {@linkcode pipelinedWritersAndReaders} saw. */
export interface PipelineReport {
  /** Connections srv logged as evicted. */
  readonly evictions: number;
  /** Clients that did not receive every pong (closed early). */
  readonly incomplete: number;
  /** From the first write to the last pong received, in ms. */
  readonly ms: number;
}

/**
 * `writers` clients each write `pings` pings in one go (pipelined, reading
 * as they go), while `readers` clients only read. Every client must get
 * every pong; returns how many srv evicted.
 */
export async function pipelinedWritersAndReaders(
  srv: SrvProcess,
  { writers = 8, pings = 2500, readers = 3, pidBase = 500 } = {},
): Promise<PipelineReport> {
  const clients: TestClient[] = [];
  const evictedBefore = evictionCount(srv);
  try {
    for (let i = 0; i < readers + writers; i++) {
      const c = await TestClient.connect(srv.socket);
      clients.push(c);
      await c.register(pidBase + i);
    }
    // Forget the registrations each one saw of the clients after it.
    for (const c of clients) await c.drainUntilPrivateReply();
    const total = writers * pings;
    const started = performance.now();
    const writing = clients.slice(readers).map((w, wi) => {
      const lines = Array.from(
        { length: pings },
        (_, i) => `{"cmd":"ping","nonce":${wi * pings + i}}`,
      );
      return w.writeRaw(encoder.encode(lines.join("\n") + "\n"));
    });
    const received = await Promise.all(clients.map(async (c) => {
      let pongs = 0;
      try {
        while (pongs < total) {
          if ((await c.nextLine(60_000)).startsWith('{"event":"pong"')) pongs++;
        }
        return true;
      } catch {
        return false; // closed by srv (or a hang, which is as bad)
      }
    }));
    await Promise.all(writing);
    const ms = performance.now() - started;
    return {
      evictions: evictionCount(srv) - evictedBefore,
      incomplete: received.filter((ok) => !ok).length,
      ms,
    };
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
  }
}

/** Evictions srv has logged so far. */
export function evictionCount(srv: SrvProcess): number {
  return (srv.stderr().match(/closed: "?evicted/g) ?? []).length;
}

/** What {@linkcode stalledReader} saw. */
export interface StalledReport {
  /** From the reader's last read to srv closing it, in ms. */
  readonly survivedMs: number;
  /** The eviction log line. */
  readonly reason: string;
  /** Round trips another client completed meanwhile. */
  readonly roundTrips: number;
  /** Broadcast bytes the writer made meanwhile. */
  readonly floodBytes: number;
}

/**
 * A registered reader stops reading while a writer keeps asking for
 * snapshots of a tree padded to `padBytes` (one broadcast each; under the 64 KiB meta cap) and a
 * bystander keeps doing round trips, pausing `paceMs` between rounds (a
 * slow trickle reaches the time rule, a flood the hard limit). Returns once
 * srv has closed the stalled reader.
 */
export async function stalledReader(
  srv: SrvProcess,
  { padBytes = 60 * 1024, pidBase = 700, paceMs = 0, timeoutMs = 60_000 } = {},
): Promise<StalledReport> {
  const writer = await TestClient.connect(srv.socket);
  const bystander = await TestClient.connect(srv.socket);
  const stalled = await Deno.connect({ transport: "unix", path: srv.socket });
  try {
    await writer.register(pidBase);
    await bystander.register(pidBase + 1);
    await stalled.write(
      encoder.encode(`{"cmd":"register","kind":"tool","pid":${pidBase + 2},"version":"t"}\n`),
    );
    // Both have seen the stalled client register once they see its `registered`.
    for (const c of [writer, bystander]) {
      let e: Json;
      do e = await c.next(); while (e.event !== "process_spawned" || e.pid !== pidBase + 2);
      do e = await c.next(); while (e.event !== "registered");
    }
    await writer.send({ cmd: "create_workspace", name: "stall" });
    let ws: Json;
    do ws = await writer.next(); while (ws.event !== "workspace_created" || ws.name !== "stall");
    await writer.send({
      cmd: "update_workspace_meta",
      workspace_id: ws.workspace_id,
      meta_patch: { pad: "s".repeat(padBytes) },
    });
    let updated: Json;
    do updated = await writer.next(); while (updated.event !== "workspace_meta_updated");
    await writer.drainUntilPrivateReply();
    await bystander.drainUntilPrivateReply();
    // From here on the stalled client reads nothing.
    const started = performance.now();
    const before = evictionCount(srv);
    let roundTrips = 0;
    let floodBytes = 0;
    let evicted = false;
    const done = waitUntil("srv closes the stalled reader", () => {
      evicted = evictionCount(srv) > before;
      return evicted;
    }, timeoutMs);
    while (!evicted) {
      // Lockstep: 4 snapshots, then a round trip of the bystander, whose
      // answer must not wait for the stalled reader.
      for (let i = 0; i < 4; i++) await writer.send({ cmd: "get_srv_snapshot" });
      for (let i = 0; i < 4; i++) floodBytes += (await writer.nextLine()).length + 1;
      await bystander.drainUntilPrivateReply();
      roundTrips++;
      if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
    }
    await done;
    const survivedMs = performance.now() - started;
    const reason = srv.stderr().split("\n").filter((l) => /closed: "?evicted/.test(l)).at(-1)!;
    return { survivedMs, reason, roundTrips, floodBytes };
  } finally {
    stalled.close();
    await writer.dispose();
    await bystander.dispose();
  }
}
