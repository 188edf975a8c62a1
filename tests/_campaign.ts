// The full-size attacks of the campaign against the merged bounds (see
// tests/e2e/hostile_campaign_test.ts for the small versions in the suite), run
// by `deno task soak --campaign`: each returns srv's peak RSS under it.
import { startSrv, TestClient } from "./_harness.ts";
import { peakRss, rssBytes } from "./_proc.ts";

const encoder = new TextEncoder();

/**
 * 10,000 tabs, then `reorders` × `reorder_tabs_bulk` of all of them (390 KB
 * events), at the defaults with `--memory`: the ring used to keep 4,096 of
 * them (1.6 GB, 3.2 GB RSS). Resolves with the peak RSS and srv's exit code.
 */
export async function bigEventsRing(
  reorders = 4200,
): Promise<{ peak: number; exit: number }> {
  const srv = await startSrv({ flags: ["--memory"] });
  const c = await TestClient.connect(srv.socket);
  try {
    await c.register(1);
    const ws = (await c.request({ cmd: "create_workspace", name: "w" })).workspace_id;
    const line = JSON.stringify({ cmd: "create_tab", workspace_id: ws, name: "t" });
    const tabs: string[] = [];
    for (let b = 0; b < 10; b++) {
      await c.writeRaw(encoder.encode(Array(1000).fill(line).join("\n") + "\n"));
      while (tabs.length < (b + 1) * 1000) {
        const e = await c.next();
        if (e.event === "tab_created") tabs.push(e.tab_id);
      }
    }
    await c.drainUntilPrivateReply();
    const orders = [tabs, [...tabs].reverse()].map((ids) =>
      JSON.stringify({ cmd: "reorder_tabs_bulk", workspace_id: ws, tab_ids: ids })
    );
    const peak = await peakRss(srv.pid, async () => {
      for (let i = 0; i < reorders; i++) {
        const e = await c.request(orders[(i + 1) % 2]);
        if (e.event !== "tabs_reordered_bulk") throw new Error(`reorder ${i}: ${e.event}`);
      }
    });
    return { peak, exit: await srv.stop() };
  } finally {
    await c.dispose();
    await srv.stop();
  }
}

/**
 * A full ring of 60 KiB events (a 64 MiB catch-up), then `clients`
 * connections that each register, ask `get_events{since:0}` and read
 * nothing: their replies together used to be `clients` × 64 MiB (2.1 GB
 * for 40). Resolves with the peak RSS and whether a bystander's ping
 * still came back.
 */
export async function manyUnreadCatchUps(
  clients = 200,
  observe = false,
): Promise<{ peak: number; bystanderOk: boolean; exit: number }> {
  const srv = await startSrv({ flags: ["--memory"] });
  const c = await TestClient.connect(srv.socket);
  const attackers: Deno.Conn[] = [];
  try {
    await c.register(1);
    const ws = (await c.request({ cmd: "create_workspace", name: "w" })).workspace_id;
    const pad = "x".repeat(60 * 1024);
    for (let i = 0; i < 1100; i++) {
      await c.request({
        cmd: "update_workspace_meta",
        workspace_id: ws,
        meta_patch: { p: pad + (i % 2) },
      });
    }
    let bystanderOk = false;
    const peak = await peakRss(srv.pid, async () => {
      for (let i = 0; i < clients; i++) {
        const conn = await Deno.connect({ transport: "unix", path: srv.socket });
        attackers.push(conn);
        const register = { cmd: "register", kind: "tool", pid: 1000 + i, version: "x", observe };
        await conn.write(
          encoder.encode(JSON.stringify(register) + '\n{"cmd":"get_events","since":0}\n'),
        );
      }
      await c.send({ cmd: "ping", nonce: 42 });
      while (true) {
        const e = await c.next(30_000);
        if (e.event === "pong" && e.nonce === 42) break;
      }
      bystanderOk = true;
    });
    for (const conn of attackers) conn.close();
    return { peak, bystanderOk, exit: await srv.stop() };
  } finally {
    for (const conn of attackers) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await c.dispose();
    await srv.stop();
  }
}

/**
 * `observers` protocol 2 observers each asking for a snapshot of a tree of
 * `blocks` blocks of 1 KB meta (about 2.2 MB at 2,000) and reading nothing,
 * at the defaults with `--memory`: each used to be answered with its own
 * copy of the tree (observers × snapshot); now one line per state version
 * is shared. Resolves with srv's RSS before they ask, once every one has
 * been answered, and at the peak, the snapshot's size, a bystander's
 * ping, and srv's exit code.
 */
export async function manyUnreadSnapshots(
  observers = 200,
  blocks = 2000,
): Promise<
  {
    before: number;
    after: number;
    peak: number;
    snapshot: number;
    bystanderOk: boolean;
    exit: number;
  }
> {
  const srv = await startSrv({ flags: ["--memory"] });
  const c = await TestClient.connect(srv.socket);
  const conns: Deno.Conn[] = [];
  try {
    await c.register(1);
    const ws = (await c.request({ cmd: "create_workspace", name: "w" })).workspace_id;
    await c.send({ cmd: "create_tab", workspace_id: ws, name: "t" });
    let tab = "";
    while (tab === "") {
      const e = await c.next();
      if (e.event === "tab_created") tab = e.tab_id;
    }
    const pad = "m".repeat(1000);
    for (let i = 0; i < blocks; i++) {
      await c.send({ cmd: "create_block", tab_id: tab, meta: { p: pad, i } });
      while ((await c.next()).event !== "block_created");
    }
    const snapshot = JSON.stringify(await c.request({ cmd: "get_srv_snapshot" })).length;
    await c.request({ cmd: "get_server_info" });
    const before = rssBytes(srv.pid);
    let after = 0;
    let bystanderOk = false;
    const peak = await peakRss(srv.pid, async () => {
      const register = { cmd: "register", kind: "tool", pid: 7, version: "o", observe: true };
      const ask = encoder.encode(JSON.stringify(register) + '\n{"cmd":"get_srv_snapshot"}\n');
      const first = new Uint8Array(256);
      for (let i = 0; i < observers; i++) {
        const conn = await Deno.connect({ transport: "unix", path: srv.socket });
        conns.push(conn);
        await conn.write(ask);
        // Both lines are handled in one turn: once bytes arrive, the snapshot is queued.
        await conn.read(first);
      }
      after = rssBytes(srv.pid);
      await c.send({ cmd: "ping", nonce: 42 });
      while (true) {
        const e = await c.next(30_000);
        if (e.event === "pong" && e.nonce === 42) break;
      }
      bystanderOk = true;
    });
    for (const conn of conns) conn.close();
    return { before, after, peak, snapshot, bystanderOk, exit: await srv.stop() };
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
    await c.dispose();
    await srv.stop();
  }
}

/**
 * Protocol 2 observers (docs/PROTOCOL.md §11.1) connecting, asking what an
 * observer may ask, and going (half by goodbye, half by dropping),
 * `concurrency` at a time, after a client registered: srv must log no
 * event for any of them and its RSS must not grow with their number.
 * Resolves with RSS before, after and at the peak, the versions before and
 * after, and srv's exit code.
 */
export async function observerChurn(
  observers = 10_000,
  concurrency = 50,
  onProgress?: (done: number, rss: number) => void,
): Promise<{ start: number; end: number; peak: number; versions: [number, number]; exit: number }> {
  const srv = await startSrv({ flags: ["--memory"] });
  const c = await TestClient.connect(srv.socket);
  try {
    await c.register(1);
    // Asked with get_server_info, which (unlike a registered get_srv_snapshot) uses no version.
    const before = (await c.request({ cmd: "get_server_info" })).event_version;
    const start = rssBytes(srv.pid);
    let next = 0;
    let done = 0;
    const step = Math.max(1, Math.floor(observers / 10));
    const one = async (i: number) => {
      const o = await TestClient.connect(srv.socket);
      try {
        await o.send({ cmd: "register", kind: "tool", pid: 1, version: "o", observe: true });
        await o.next();
        await o.request({ cmd: "get_srv_snapshot" });
        await o.request({ cmd: "get_events", since: 0 });
        if (i % 2 === 0) {
          await o.send({ cmd: "goodbye" });
          await o.closedByServer();
        }
      } finally {
        await o.dispose();
      }
    };
    const peak = await peakRss(srv.pid, async () => {
      await Promise.all(Array.from({ length: concurrency }, async () => {
        while (next < observers) {
          await one(next++);
          if (++done % step === 0) onProgress?.(done, rssBytes(srv.pid));
        }
      }));
    });
    const info = await c.request({ cmd: "get_server_info" });
    const after = info.event_version;
    if (info.connections !== 1) throw new Error(`${info.connections} connections left open`);
    return {
      start,
      end: rssBytes(srv.pid),
      peak,
      versions: [before, after],
      exit: await srv.stop(),
    };
  } finally {
    await c.dispose();
    await srv.stop();
  }
}
