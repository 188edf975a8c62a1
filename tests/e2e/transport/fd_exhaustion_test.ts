// Integration: running out of file descriptors (a client opening
// connections faster than others close) slows srv down instead of killing
// it: accept backs off, logs, and resumes when descriptors are free.
import assert from "node:assert/strict";
import { unixTransportOnly, withSrv } from "../../_harness.ts";
import { fdCount, linuxOnly, waitUntil } from "../../_proc.ts";

/** True (skip) when prlimit (util-linux) is missing, saying so on stderr. */
function prlimitMissing(): boolean {
  try {
    if (new Deno.Command("prlimit", { args: ["--version"], stdout: "null" }).outputSync().success) {
      return false;
    }
  } catch {
    // Not installed.
  }
  Deno.stderr.writeSync(new TextEncoder().encode("skipped: prlimit (util-linux) not found\n"));
  return true;
}

Deno.test({
  name: "out of file descriptors, srv keeps running and accepts again once some are free",
  ignore: linuxOnly("squeezes srv's descriptor limit with prlimit") || prlimitMissing() ||
    unixTransportOnly("node:net retries accept on EMFILE by itself, without srv's log lines"),
  fn: async () => {
    await withSrv(async (srv, connect) => {
      const observer = await connect();
      await observer.register(1);
      // Room for a few more connections only.
      const limit = fdCount(srv.pid) + 4;
      const prlimit = await new Deno.Command("prlimit", {
        args: ["--pid", String(srv.pid), `--nofile=${limit}:${limit}`],
      }).output();
      assert.ok(prlimit.success, new TextDecoder().decode(prlimit.stderr));

      // Connects succeed (the kernel queues them) but srv cannot accept them all.
      const waiting: Deno.UnixConn[] = [];
      for (let i = 0; i < 12; i++) {
        waiting.push(await Deno.connect({ transport: "unix", path: srv.socket }));
      }
      await waitUntil(
        "srv reports it cannot accept",
        () => /cannot accept connections/.test(srv.stderr()),
      );
      // Still alive and serving the connections it has.
      assert.deepEqual(await observer.request({ cmd: "ping", nonce: 5 }), {
        event: "pong",
        nonce: 5,
        version: 4,
      });

      for (const c of waiting) c.close();
      // Freed descriptors let the queued and new connections in.
      await waitUntil(
        "srv accepts again",
        () => /accepting connections on .* again/.test(srv.stderr()),
      );
      const late = await connect();
      assert.equal((await late.request({ cmd: "ping", nonce: 1 })).code, "not_registered");
      assert.doesNotMatch(srv.stderr(), /Uncaught|\n\s+at /);
    });
  },
});
