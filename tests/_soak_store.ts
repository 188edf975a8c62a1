// `deno task soak --store`: issue 11's "650 blocks with 850 KB of meta each"
// row at full size against a store-backed srv. Before the store kept rows,
// the checkpoint string passed V8's limit and srv exited 5 on every restart.
// Now: every SIGTERM exits 0 and every restart loads the blocks. A snapshot
// of that tree would itself pass V8's string limit, so the block count is
// read from srv's own start-up log line, not from a snapshot.
import { rssBytes } from "./_proc.ts";
import { startSrv, TestClient } from "./_harness.ts";

/**
 * Size caps raised past the row (650 × 850 KB): the store must survive a
 * tree this large on its own, not because the caps keep it out.
 */
const UNCAPPED = ["--max-meta-bytes", String(1 << 20), "--max-state-bytes", String(1 << 30)];

/** Runs the row; returns the rules srv broke (empty when none). */
export async function soakStoreRow(say: (text: string) => void): Promise<string[]> {
  const violations: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "srv-soak-store-" });
  const data = `${dir}/data`;
  const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
  try {
    const srv = await startSrv({ dir, flags: ["--data-dir", data, ...UNCAPPED] });
    const c = await TestClient.connect(srv.socket);
    await c.register(1);
    const ws = await c.request({ cmd: "create_workspace", name: "big" });
    const tab = await c.request({ cmd: "create_tab", workspace_id: ws.workspace_id, name: "t" });
    await c.next(); // active_tab_changed
    const pad = "m".repeat(850 * 1024);
    let created = 0;
    let refused = "";
    for (let i = 0; i < 650; i++) {
      await c.send({ cmd: "create_block", tab_id: tab.tab_id, meta: { i, pad } });
      const line = await c.nextLine(60_000);
      if (line.startsWith('{"event":"block_created"')) created++;
      else refused ||= line.slice(0, 200);
      if (i % 100 === 99) {
        say(`  ${i + 1} sent, ${created} created, srv RSS ${mib(rssBytes(srv.pid))}`);
      }
    }
    if (refused) say(`  refused (a size cap, not a crash): ${refused}`);
    await c.dispose();
    let t = performance.now();
    const code = await srv.stop("SIGTERM");
    say(
      `  SIGTERM with ${created} blocks: exit ${code} in ${(performance.now() - t).toFixed(0)} ms`,
    );
    if (code !== 0) violations.push(`SIGTERM exited ${code} with ${created} large blocks`);
    for (let restart = 1; restart <= 2; restart++) {
      t = performance.now();
      const again = await startSrv({ dir, flags: ["--data-dir", data, ...UNCAPPED] });
      const ready = performance.now() - t;
      const loaded = Number(again.stderr().match(/(\d+) blocks/)?.[1] ?? NaN);
      say(
        `  restart ${restart}: ready in ${ready.toFixed(0)} ms with ${loaded} blocks, RSS ${
          mib(rssBytes(again.pid))
        }`,
      );
      if (loaded !== created) violations.push(`restart ${restart} loaded ${loaded} of ${created}`);
      const exit = await again.stop("SIGTERM");
      if (exit !== 0) violations.push(`restart ${restart}: SIGTERM exited ${exit}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return violations;
}
