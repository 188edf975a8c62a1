// Hostile inputs, data-dir rows of issue 11 (docs/PROTOCOL.md §10 "Files"),
// replayed against a real srv process: what another local user, a closing
// terminal, a stray signal, a damaged or read-only store, a full disk and a
// hurried restart used to do to srv, and what srv does now.
import assert from "node:assert/strict";
import {
  awaitReadiness,
  type Json,
  ON_WINDOWS,
  runSrv,
  srvCommand,
  type SrvProcess,
  startSrv,
  TestClient,
  unixOnly,
} from "../_harness.ts";
import { linuxOnly, waitUntil } from "../_proc.ts";
import { ExitCode } from "../../srv/cli/exit_code.ts";

const decoder = new TextDecoder();

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-hostile-dd-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function serveArgs(dir: string, data: string, extra: string[] = []): string[] {
  return ["serve", "--socket", `${dir}/s.sock`, "--data-dir", data, ...extra];
}

/** `srv serve` to completion: it is expected to refuse. */
function refuse(dir: string, data: string, extra: string[] = [], env?: Record<string, string>) {
  return runSrv(serveArgs(dir, data, extra), { env });
}

function durable(dir: string, data: string, extra: string[] = []): Promise<SrvProcess> {
  return startSrv({ dir, socket: `${dir}/s.sock`, flags: ["--data-dir", data, ...extra] });
}

function mode(path: string): number {
  return Deno.lstatSync(path).mode! & 0o7777;
}

/** Every file in `dir` with its mode, for messages. */
function modes(dir: string): Record<string, string> {
  return Object.fromEntries(
    [...Deno.readDirSync(dir)].map((e) => [e.name, mode(`${dir}/${e.name}`).toString(8)]),
  );
}

/** A store with one workspace in it, made by a real srv; returns its name. */
async function seed(dir: string, data: string, extra: string[] = []): Promise<string> {
  const srv = await durable(dir, data, extra);
  const c = await TestClient.connect(srv.socket);
  await c.register(1);
  await c.request({ cmd: "create_workspace", name: "secret-workspace-name" });
  await c.dispose();
  assert.equal(await srv.stop(), 0);
  return "secret-workspace-name";
}

/**
 * Starts `[...wrapper] sh -c '<prefix>; exec srv serve ...'` (a umask, a
 * private mount) and waits for its readiness line or its exit.
 */
async function serveUnder(
  wrapper: string[],
  prefix: string,
  args: string[],
): Promise<{ ready: boolean; stdout: string; stderr: () => string; child: Deno.ChildProcess }> {
  const { cmd, args: full } = srvCommand(args);
  const argv = [...wrapper, "sh", "-c", `${prefix}; exec "$0" "$@"`, cmd, ...full];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { ready, stdout, stderr, errDone, reader } = await awaitReadiness(child);
  reader.releaseLock();
  if (!ready) {
    await child.status;
    await errDone;
  }
  return { ready, stdout, stderr, child };
}

/**
 * The attack of the issue, replayed when the suite runs as root: another
 * local user (nobody) tries to read every store file. The path leading to
 * the data dir is opened up for the attempt, so only the files' own modes
 * stand in the way.
 */
async function assertOthersCannotRead(dir: string, data: string, secret: string): Promise<void> {
  if (ON_WINDOWS || Deno.uid() !== 0) return;
  await Deno.chmod(dir, 0o755);
  for (const name of Deno.readDirSync(data)) {
    const attempt = await new Deno.Command("setpriv", {
      args: ["--reuid=65534", "--regid=65534", "--clear-groups", "cat", `${data}/${name.name}`],
      stdout: "piped",
      stderr: "piped",
    }).output().catch(() => null);
    if (attempt === null) return note("skipped: no setpriv to read as another user");
    assert.equal(attempt.success, false, `nobody read ${name.name}`);
    assert.match(decoder.decode(attempt.stderr), /Permission denied/);
    assert.ok(!decoder.decode(attempt.stdout).includes(secret));
  }
  await Deno.chmod(dir, 0o700);
}

async function stopChild(child: Deno.ChildProcess, signal: Deno.Signal = "SIGTERM") {
  child.kill(signal);
  const status = await child.status;
  await child.stdout.cancel().catch(() => {});
  return status.code;
}

Deno.test("a data dir made beforehand 0755: db, WAL, shm and lock are 0600, whatever the umask", {
  ignore: unixOnly("Unix file modes and umask"),
}, async () => {
  for (const umask of ["022", "000"]) {
    await withTempDir(async (dir) => {
      const data = `${dir}/data`;
      await Deno.mkdir(data);
      await Deno.chmod(data, 0o755);
      const srv = await serveUnder([], `umask ${umask}`, serveArgs(dir, data));
      assert.ok(srv.ready, srv.stderr());
      // Write something, so the WAL holds a name another user could read.
      const c = await TestClient.connect(`${dir}/s.sock`);
      await c.register(1);
      await c.request({ cmd: "create_workspace", name: "secret-workspace-name" });
      const files = modes(data);
      assert.ok("srv.db" in files && "srv.db-wal" in files && "srv.lock" in files, `${files}`);
      for (const [name, m] of Object.entries(files)) {
        assert.equal(m, "600", `umask ${umask}: ${name} is ${m}: ${JSON.stringify(files)}`);
      }
      await assertOthersCannotRead(dir, data, "secret-workspace-name");
      await c.dispose();
      assert.equal(await stopChild(srv.child), 0);
    });
  }
});

Deno.test("store files left 0644 by an older srv are tightened to 0600 at start", {
  ignore: unixOnly("Unix file modes"),
}, async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/data`;
    await seed(dir, data);
    for (const name of ["srv.db", "srv.lock"]) await Deno.chmod(`${data}/${name}`, 0o644);
    const srv = await durable(dir, data);
    for (const [name, m] of Object.entries(modes(data))) assert.equal(m, "600", name);
    assert.equal(await srv.stop(), 0);
  });
});

Deno.test("a data dir others may write to is refused with exit 4, sticky or not, and left empty", {
  ignore: unixOnly("Unix directory modes"),
}, async () => {
  await withTempDir(async (dir) => {
    for (const m of [0o775, 0o757, 0o1777]) {
      const data = `${dir}/data-${m.toString(8)}`;
      await Deno.mkdir(data);
      await Deno.chmod(data, m);
      const r = await refuse(dir, data);
      assert.equal(r.code, ExitCode.endpointUnsafe, r.stderr);
      assert.equal(r.stdout, "", "never ready");
      assert.ok(r.stderr.includes(`refusing to use the data dir ${data}`), r.stderr);
      assert.ok(r.stderr.includes(`chmod go-w ${data}`), r.stderr);
      assert.deepEqual([...Deno.readDirSync(data)], [], "nothing created in it");
    }
    await assert.rejects(Deno.lstat(`${dir}/s.sock`), Deno.errors.NotFound, "socket released");
  });
});

Deno.test(
  "a parent another user owns or may write to is refused (data dir and socket dir): exit 4",
  {
    ignore: unixOnly("Unix ownership") || linuxOnly("chown to nobody needs root on Linux") ||
      notRoot("chown to another user"),
  },
  async () => {
    await withTempDir(async (dir) => {
      // Another user's directory, holding a private dir of ours: they can
      // rename ours away and put theirs in its place between two runs.
      const foreign = `${dir}/foreign`;
      await Deno.mkdir(`${foreign}/data`, { recursive: true, mode: 0o700 });
      await Deno.mkdir(`${foreign}/sock`, { recursive: true, mode: 0o700 });
      await Deno.chown(foreign, 65534, 65534);
      const viaData = await refuse(dir, `${foreign}/data`);
      assert.equal(viaData.code, ExitCode.endpointUnsafe, viaData.stderr);
      assert.ok(
        viaData.stderr.includes(`${foreign} is owned by uid 65534, not by root or this user`),
        viaData.stderr,
      );
      const viaSocket = await runSrv(["serve", "--socket", `${foreign}/sock/s.sock`, "--memory"]);
      assert.equal(viaSocket.code, ExitCode.endpointUnsafe, viaSocket.stderr);
      assert.ok(
        viaSocket.stderr.includes(`socket directory ${foreign}/sock: ${foreign} is owned by uid`),
        viaSocket.stderr,
      );

      // Further up counts too, and so does a group-writable parent.
      const open = `${dir}/open`;
      await Deno.mkdir(`${open}/a/data`, { recursive: true, mode: 0o700 });
      await Deno.chmod(open, 0o770);
      const deep = await refuse(dir, `${open}/a/data`);
      assert.equal(deep.code, ExitCode.endpointUnsafe, deep.stderr);
      assert.ok(
        deep.stderr.includes(`${open} is writable by other users (mode 0770)`),
        deep.stderr,
      );
      assert.ok(deep.stderr.includes(`chmod go-w ${open}`), deep.stderr);

      // A sticky parent (like /tmp) and a symlink to a safe place are fine.
      await Deno.chmod(open, 0o1777);
      await Deno.symlink(`${open}/a/data`, `${dir}/link`);
      const srv = await durable(dir, `${dir}/link`);
      assert.equal(await srv.stop(), 0);
      assert.ok((await Deno.lstat(`${open}/a/data/srv.db`)).isFile);
    });
  },
);

/** Says on stderr why part of a test did not run, so a skip is never silent. */
function note(text: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`${text}\n`));
}

function notRoot(what: string): boolean {
  if (ON_WINDOWS || Deno.uid() === 0) return false;
  Deno.stderr.writeSync(
    new TextEncoder().encode(`skipped when not root: ${what} (unit tests cover it)\n`),
  );
  return true;
}

Deno.test("SIGHUP shuts down like SIGTERM: exit 0, socket removed, store closed and reusable", {
  ignore: unixOnly("Unix signals"),
}, async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/data`;
    const srv = await durable(dir, data);
    const c = await TestClient.connect(srv.socket);
    await c.register(1);
    const ws = await c.request({ cmd: "create_workspace", name: "kept" });
    assert.equal(await srv.stop("SIGHUP"), 0, srv.stderr());
    assert.match(srv.stderr(), /SIGHUP"? received; shutting down/);
    assert.ok(await c.closedByServer());
    await c.dispose();
    await assert.rejects(Deno.lstat(srv.socket), Deno.errors.NotFound, "socket removed");
    // The lock is free at once and the workspace is there.
    const again = await durable(dir, data, ["--lock-wait", "0"]);
    const d = await TestClient.connect(again.socket);
    await d.register(1);
    const snap = await d.request({ cmd: "get_srv_snapshot" });
    assert.deepEqual(snap.workspaces, [[ws.workspace_id, "kept"]]);
    await d.dispose();
    assert.equal(await again.stop(), 0);
  });
});

Deno.test(
  "SIGHUP after the terminal is gone (stdout and stderr closed): still exit 0, socket removed",
  {
    ignore: unixOnly("Unix signals"),
  },
  async () => {
    await withTempDir(async (dir) => {
      const { cmd, args } = srvCommand(serveArgs(dir, `${dir}/data`));
      const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
        .spawn();
      const reader = child.stdout.getReader();
      let out = "";
      while (!out.includes("\n")) {
        const next = await reader.read();
        if (next.done) break;
        out += decoder.decode(next.value, { stream: true });
      }
      assert.match(out, /^srv ready /);
      reader.releaseLock();
      // What a closed terminal leaves: every write to stdout or stderr fails.
      await child.stdout.cancel();
      await child.stderr.cancel();
      child.kill("SIGHUP");
      assert.equal((await child.status).code, 0);
      await assert.rejects(Deno.lstat(`${dir}/s.sock`), Deno.errors.NotFound, "socket removed");
    });
  },
);

Deno.test("SIGUSR1 and SIGUSR2 are logged and ignored; srv keeps serving, no debugger left open", {
  ignore: unixOnly("Unix signals"),
}, async () => {
  const srv = await startSrv();
  const c = await TestClient.connect(srv.socket);
  try {
    await c.register(1);
    for (const signal of ["SIGUSR1", "SIGUSR2"] as const) {
      srv.child.kill(signal);
      await waitUntil(`srv logs ${signal}`, () => srv.stderr().includes(`${signal}`));
      const pong = await c.request({ cmd: "ping", nonce: 7 });
      assert.equal(pong.event, "pong", `still serving after ${signal}`);
    }
    assert.match(srv.stderr(), /SIGUSR1"? received; srv does not use it, ignoring it/);
    // Deno (2.9.2 on) opens its debugger on 127.0.0.1:9229 on SIGUSR1, once
    // its own handler is armed (half a second after start): signal until it
    // did and srv closed it, or until it is clear this runtime never does.
    const closed = /closed the debugger the Deno runtime opened/;
    const deadline = Date.now() + 5000;
    while (!closed.test(srv.stderr()) && Date.now() < deadline) {
      const seen = srv.stderr().split("SIGUSR1").length;
      srv.child.kill("SIGUSR1");
      await waitUntil("srv logs it", () => srv.stderr().split("SIGUSR1").length > seen);
      await c.request({ cmd: "ping", nonce: 8 });
    }
    if (!closed.test(srv.stderr())) note("this runtime opened no debugger on SIGUSR1");
    await waitUntil("nothing listens on 127.0.0.1:9229", async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: 9229 })).close();
        return false;
      } catch {
        return true;
      }
    });
    assert.equal((await c.request({ cmd: "ping", nonce: 9 })).event, "pong");
  } finally {
    await c.dispose();
  }
  assert.equal(await srv.stop(), 0);
  await assert.rejects(Deno.lstat(srv.socket), Deno.errors.NotFound);
});

Deno.test("a read-only srv.db is refused with exit 5 before the readiness line", {
  ignore: unixOnly("Unix file modes"),
}, async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/data`;
    await seed(dir, data);
    await Deno.chmod(`${data}/srv.db`, 0o444);
    const r = await refuse(dir, data);
    assert.equal(r.code, ExitCode.store, r.stderr);
    assert.equal(r.stdout, "", "never ready");
    assert.ok(r.stderr.includes(`the store ${data}/srv.db is read-only (mode 0444)`), r.stderr);
    assert.ok(r.stderr.includes(`chmod 600 ${data}/srv.db`), r.stderr);
    assert.equal(mode(`${data}/srv.db`), 0o444, "left as it was");
  });
});

Deno.test(
  "an immutable srv.db (even root cannot write it) fails the write probe: exit 5, not ready",
  {
    ignore: linuxOnly("chattr") || notRoot("chattr +i"),
  },
  async () => {
    await withTempDir(async (dir) => {
      const data = `${dir}/data`;
      await seed(dir, data);
      const chattr = await new Deno.Command("chattr", { args: ["+i", `${data}/srv.db`] }).output()
        .catch(() => null);
      if (chattr === null || !chattr.success) {
        note("skipped: chattr +i is not supported here");
        return;
      }
      try {
        const r = await refuse(dir, data);
        assert.equal(r.code, ExitCode.store, r.stderr);
        assert.equal(r.stdout, "", "never ready");
        assert.ok(r.stderr.includes(`the store ${data}/srv.db cannot be written`), r.stderr);
        assert.match(r.stderr, /Operation not permitted/);
      } finally {
        await new Deno.Command("chattr", { args: ["-i", `${data}/srv.db`] }).output();
      }
    });
  },
);

Deno.test("srv.db truncated to 0 bytes is refused (exit 5), not silently started at version 1", async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/data`;
    await seed(dir, data);
    await Deno.truncate(`${data}/srv.db`, 0);
    const r = await refuse(dir, data);
    assert.equal(r.code, ExitCode.store, r.stderr);
    assert.equal(r.stdout, "", "never ready");
    assert.ok(r.stderr.includes(`the store ${data}/srv.db is empty (0 bytes)`), r.stderr);
    assert.ok(r.stderr.includes(`mv ${data}/srv.db ${data}/srv.db.empty`), r.stderr);
    assert.equal((await Deno.stat(`${data}/srv.db`)).size, 0, "left as it was");
    // Following the advice starts fresh.
    await Deno.rename(`${data}/srv.db`, `${data}/srv.db.empty`);
    const srv = await durable(dir, data);
    assert.equal(await srv.stop(), 0);
  });
});

Deno.test("a store at its page cap (disk full) is refused before readiness with the real cause", async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/data`;
    const env = { SRV_STORE_MAX_PAGES: "40" };
    const srv = await startSrv({ dir, socket: `${dir}/s.sock`, flags: ["--data-dir", data], env });
    const a = await TestClient.connect(srv.socket);
    await a.register(1);
    const ws = await a.request({ cmd: "create_workspace", name: "w" });
    let stored = -1;
    try {
      for (let i = 0; i < 500; i++) {
        const pad = "p".repeat(3000);
        await a.send({
          cmd: "update_workspace_meta",
          workspace_id: ws.workspace_id,
          meta_patch: { i, pad },
        });
        if ((await a.next()).event === "workspace_meta_updated") stored = i;
      }
    } catch {
      // The store filled up: srv closed the connection.
    }
    assert.equal(await srv.exited(), ExitCode.store);
    await a.dispose();
    assert.ok(stored > 3, `${stored + 1} updates before the cap`);

    // The host restarts it: refused at once, saying why, instead of ready-then-dead.
    const r = await refuse(dir, data, [], env);
    assert.equal(r.code, ExitCode.store, r.stderr);
    assert.equal(r.stdout, "", "never ready");
    assert.ok(r.stderr.includes(`the store ${data}/srv.db cannot be written`), r.stderr);
    assert.match(r.stderr, /reached its page cap \(SRV_STORE_MAX_PAGES=40\)/);
    assert.doesNotMatch(r.stderr, /not an SQLite database/);
    // With room again, everything stored is there.
    const again = await durable(dir, data);
    const c = await TestClient.connect(again.socket);
    await c.register(2);
    const snap = await c.request({ cmd: "get_srv_snapshot" });
    assert.equal(snap.meta.workspaces[ws.workspace_id].i, stored, "every acknowledged update");
    await c.dispose();
    assert.equal(await again.stop(), 0);
  });
});

Deno.test("a full and a read-only file system are reported as such (tmpfs in a private mount)", {
  ignore: linuxOnly("mount namespaces") || notRoot("mount"),
}, async () => {
  await withTempDir(async (dir) => {
    const probe = await new Deno.Command("unshare", { args: ["-m", "true"] }).output()
      .catch(() => null);
    if (probe === null || !probe.success) {
      note("skipped: unshare -m is not permitted here");
      return;
    }
    const mnt = `${dir}/mnt`;
    await Deno.mkdir(mnt);
    const data = `${mnt}/data`;
    const mount = `mount -t tmpfs -o size=512k,mode=700 tmpfs ${mnt}`;
    // The disk filled up, then srv started.
    const full = await serveUnder(
      ["unshare", "-m"],
      `${mount} && mkdir -m 700 ${data} && (dd if=/dev/zero of=${mnt}/filler bs=4k 2>/dev/null; true)`,
      serveArgs(dir, data),
    );
    assert.equal(full.ready, false, full.stdout);
    assert.equal((await full.child.status).code, ExitCode.store, full.stderr());
    assert.match(full.stderr(), /the disk (holding \S+ )?is full.*free some space/);
    assert.doesNotMatch(full.stderr(), /not an SQLite database/);

    const readOnly = await serveUnder(
      ["unshare", "-m"],
      `${mount.replace("mode=700", "mode=700,ro")}`,
      serveArgs(dir, data),
    );
    assert.equal(readOnly.ready, false, readOnly.stdout);
    assert.equal((await readOnly.child.status).code, ExitCode.store, readOnly.stderr());
    assert.match(readOnly.stderr(), /the file system is mounted read-only/);
  });
});

Deno.test(
  "a new serve waits for the data dir of a srv that is shutting down (logged once), then serves its state",
  {
    ignore: unixOnly("Unix signals"),
  },
  async () => {
    await withTempDir(async (dir) => {
      const data = `${dir}/data`;
      const first = await startSrv({
        dir,
        socket: `${dir}/first.sock`,
        flags: ["--data-dir", data],
      });
      const a = await TestClient.connect(first.socket);
      await a.register(1);
      await a.request({ cmd: "create_workspace", name: "handed-over" });
      await a.dispose();
      // A shutdown that takes as long as the test needs: the first srv is
      // frozen with its SIGTERM pending, store and lock still open, and
      // shuts down when it is let go.
      first.child.kill("SIGSTOP");
      first.child.kill("SIGTERM");
      const { cmd, args } = srvCommand(
        ["serve", "--socket", `${dir}/second.sock`, "--data-dir", data],
      );
      const second = new Deno.Command(cmd, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      let errText = "";
      const errDone = (async () => {
        for await (const chunk of second.stderr) errText += decoder.decode(chunk);
      })();
      try {
        await waitUntil("the second srv says it waits", () => /waiting up to 10 s/.test(errText));
        first.child.kill("SIGCONT");
        assert.equal(await first.exited(), 0);
        assert.match(first.stderr(), /SIGTERM"? received; shutting down/);
        const reader = second.stdout.getReader();
        let out = "";
        while (!out.includes("\n")) {
          const next = await reader.read();
          if (next.done) throw new Error(`the second srv exited: ${errText}`);
          out += decoder.decode(next.value, { stream: true });
        }
        reader.releaseLock();
        assert.match(out, /^srv ready /);
        const c = await TestClient.connect(`${dir}/second.sock`);
        await c.register(3);
        const snap = await c.request({ cmd: "get_srv_snapshot" });
        assert.ok(snap.workspaces.some((w: Json) => w[1] === "handed-over"));
        await c.dispose();
      } finally {
        try {
          first.child.kill("SIGCONT");
        } catch {
          // Already gone.
        }
        second.kill("SIGTERM");
        assert.equal((await second.status).code, 0, errText);
        await second.stdout.cancel().catch(() => {});
        await errDone;
      }
      assert.equal((errText.match(/waiting up to 10 s/g) ?? []).length, 1, "logged once");
    });
  },
);

Deno.test(
  "SIGTERM, then a new serve on the same socket and data dir as soon as the socket is gone",
  {
    ignore: unixOnly("Unix signals"),
  },
  async () => {
    await withTempDir(async (dir) => {
      const data = `${dir}/data`;
      const first = await durable(dir, data);
      const a = await TestClient.connect(first.socket);
      await a.register(1);
      const ws = await a.request({ cmd: "create_workspace", name: "w" });
      for (let i = 0; i < 200; i++) {
        await a.send({
          cmd: "update_workspace_meta",
          workspace_id: ws.workspace_id,
          meta_patch: { i },
        });
      }
      await a.take(200);
      await a.dispose();
      first.child.kill("SIGTERM");
      await waitUntil("the socket is gone", async () => {
        try {
          await Deno.lstat(first.socket);
          return false;
        } catch {
          return true;
        }
      });
      const second = await durable(dir, data);
      assert.equal(await first.exited(), 0);
      const c = await TestClient.connect(second.socket);
      await c.register(1);
      const snap = await c.request({ cmd: "get_srv_snapshot" });
      assert.deepEqual(snap.meta.workspaces[ws.workspace_id], { i: 199 });
      await c.dispose();
      assert.equal(await second.stop(), 0);
    });
  },
);

Deno.test("a data dir held by a live srv: exit 5 after --lock-wait, naming the dir; the first keeps serving", async () => {
  await withTempDir(async (dir) => {
    const data = `${dir}/data`;
    const first = await durable(dir, data);
    const r = await runSrv([
      "serve",
      "--socket",
      `${dir}/other.sock`,
      "--data-dir",
      data,
      "--lock-wait",
      "0.3",
    ]);
    assert.equal(r.code, ExitCode.store, r.stderr);
    assert.equal(r.stdout, "");
    assert.ok(
      r.stderr.includes(`another srv is using the data dir ${data}`) &&
        r.stderr.includes("after waiting 0.3 s (--lock-wait)"),
      r.stderr,
    );
    assert.equal((r.stderr.match(/waiting up to 0.3 s/g) ?? []).length, 1, "logged once");
    const c = await TestClient.connect(first.socket);
    await c.register(1);
    assert.equal((await c.request({ cmd: "ping", nonce: 1 })).event, "pong");
    await c.dispose();
    assert.equal(await first.stop(), 0);
  });
});

Deno.test(
  "SIGHUP or SIGTERM while waiting for the data dir's lock: exit 0 at once, socket removed, the holder untouched",
  { ignore: unixOnly("Unix signals") },
  async () => {
    await withTempDir(async (dir) => {
      const data = `${dir}/data`;
      const first = await durable(dir, data);
      for (const signal of ["SIGHUP", "SIGTERM"] as const) {
        const socket = `${dir}/waiting-${signal}.sock`;
        const { cmd, args } = srvCommand(
          ["serve", "--socket", socket, "--data-dir", data, "--lock-wait", "60s"],
        );
        const waiting = new Deno.Command(cmd, {
          args,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        let errText = "";
        const errDone = (async () => {
          for await (const chunk of waiting.stderr) errText += decoder.decode(chunk);
        })();
        const outText = new Response(waiting.stdout).text();
        await waitUntil(`it says it waits (${signal})`, () => /waiting up to 60 s/.test(errText));
        waiting.kill(signal);
        // A default action would kill it (code 129/143, signal set); the
        // wait is given up instead, well before --lock-wait runs out.
        const status = await waiting.status;
        await errDone;
        assert.equal(status.code, 0, errText);
        assert.equal(status.signal, null, errText);
        assert.equal(await outText, "", "no readiness line");
        assert.match(errText, new RegExp(`${signal}"? received while waiting for the data dir`));
        assert.throws(() => Deno.lstatSync(socket), Deno.errors.NotFound, "socket removed");
      }
      const c = await TestClient.connect(first.socket);
      await c.register(1);
      assert.equal((await c.request({ cmd: "ping", nonce: 1 })).event, "pong");
      await c.dispose();
      assert.equal(await first.stop(), 0);
    });
  },
);
