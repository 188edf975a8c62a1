// The full-size attacks of the campaign against the merged bounds (see
// tests/e2e/hostile_campaign_test.ts for the small versions in the suite), run
// by `deno task soak --campaign`: each returns srv's peak RSS under it.
import { startSrv, TestClient } from "./_harness.ts";
import { rssBytes } from "./_proc.ts";

const encoder = new TextEncoder();

/** Samples `pid`'s RSS every 20 ms while `work` runs; returns the peak. */
async function peakRss(pid: number, work: () => Promise<void>): Promise<number> {
  let peak = rssBytes(pid);
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, rssBytes(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await sampler;
  }
  return Math.max(peak, rssBytes(pid));
}

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
        const register = { cmd: "register", kind: "tool", pid: 1000 + i, version: "x" };
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
