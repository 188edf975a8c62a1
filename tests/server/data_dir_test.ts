// Unit tests of the data dir's rules (srv/server/data_dir.ts) and of the ancestor
// check both the data dir and the socket dir go through
// (srv/server/trusted_path.ts). "Another user" is staged with a fake file system
// or an injected uid, so these run the same as root and as anyone else.
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { checkAncestors, type PathInfo, type TrustFs } from "../../srv/server/trusted_path.ts";
import {
  DataDirError,
  describeFailure,
  lockDataDir,
  LockWaitAborted,
  prepareDataDir,
  prepareStoreFile,
} from "../../srv/server/data_dir.ts";
import { tryLockFile } from "../../srv/server/lock_file.ts";
import { unixOnly } from "../_harness.ts";
import { parseServeArgs } from "../../srv/cli/serve_args.ts";
import { DurableEventLog } from "../../srv/server/durable_event_log.ts";
import { StoreError } from "../../srv/server/_store_schema.ts";

type Entry = { dir: [uid: number, mode: number] } | { link: string } | { file: number };

/** A file system of `path → entry`; anything not listed is missing. */
function fakeFs(entries: Record<string, Entry>): TrustFs {
  return {
    lstat(path: string): PathInfo | null {
      const e = entries[path];
      if (e === undefined) return null;
      if ("dir" in e) {
        return { isDirectory: true, isSymlink: false, uid: e.dir[0], mode: e.dir[1] };
      }
      if ("link" in e) return { isDirectory: false, isSymlink: true, uid: 0, mode: 0o777 };
      return { isDirectory: false, isSymlink: false, uid: e.file, mode: 0o644 };
    },
    readLink(path: string): string {
      const e = entries[path];
      if (e === undefined || !("link" in e)) throw new Error(`not a link: ${path}`);
      return e.link;
    },
  };
}

const ALICE = 1000;
const MALLORY = 1001;

/** A typical Linux machine, as alice sees it. */
const MACHINE: Record<string, Entry> = {
  "/": { dir: [0, 0o755] },
  "/home": { dir: [0, 0o755] },
  "/home/alice": { dir: [ALICE, 0o750] },
  "/home/alice/.local": { dir: [ALICE, 0o755] },
  "/home/alice/.local/state": { dir: [ALICE, 0o700] },
  "/home/mallory": { dir: [MALLORY, 0o755] },
  "/home/mallory/srv": { dir: [ALICE, 0o700] },
  "/tmp": { dir: [0, 0o1777] },
  "/tmp/srv-1000": { dir: [ALICE, 0o700] },
  "/run": { dir: [0, 0o755] },
  "/run/user": { dir: [0, 0o755] },
  "/run/user/1000": { dir: [ALICE, 0o700] },
  "/srv": { dir: [0, 0o775] },
  "/shared": { dir: [MALLORY, 0o1777] },
  "/etc": { dir: [0, 0o755] },
  "/etc/passwd": { file: 0 },
};

function check(path: string, entries: Record<string, Entry> = {}, uid: number | null = ALICE) {
  return checkAncestors(path, uid, fakeFs({ ...MACHINE, ...entries }));
}

Deno.test("checkAncestors: the common defaults pass (XDG_RUNTIME_DIR, /tmp/srv-<uid>, ~/.local/state)", () => {
  assert.equal(check("/run/user/1000/srv"), null);
  assert.equal(check("/tmp/srv-1000"), null);
  assert.equal(check("/home/alice/.local/state/srv"), null);
  // Missing components are created by srv itself, private: nothing to check.
  assert.equal(check("/home/alice/.local/state/srv/deeper/still"), null);
  // Root in /tmp (how the test suite runs).
  assert.equal(check("/tmp/srv-test-x/data", { "/tmp/srv-test-x": { dir: [0, 0o700] } }, 0), null);
});

Deno.test("checkAncestors: one rule row per way another user could swap the directory", () => {
  const rows: [string, string, Record<string, Entry>, RegExp][] = [
    [
      "a parent another user owns",
      "/home/mallory/srv",
      {},
      /^\/home\/mallory is owned by uid 1001, not by root or this user \(uid 1000\)/,
    ],
    [
      "a group-writable grandparent",
      "/srv/a/b",
      { "/srv/a": { dir: [ALICE, 0o700] }, "/srv/a/b": { dir: [ALICE, 0o700] } },
      /^\/srv is writable by other users \(mode 0775\) without the sticky bit.*chmod go-w \/srv/,
    ],
    [
      "a sticky directory another user owns (they may still rename in it)",
      "/shared/srv",
      { "/shared/srv": { dir: [ALICE, 0o700] } },
      /^\/shared is owned by uid 1001/,
    ],
    [
      "a symlink whose target lies under another user's directory",
      "/home/alice/.local/state/srv",
      { "/home/alice/.local/state": { link: "/home/mallory/srv" } },
      /^\/home\/mallory is owned by uid 1001/,
    ],
    [
      "a symlink in another user's directory (they may re-point it)",
      "/home/mallory/link/x",
      { "/home/mallory/link": { link: "/tmp/srv-1000" } },
      /^\/home\/mallory is owned by uid 1001/,
    ],
    [
      "a relative symlink climbing into another user's directory",
      "/home/alice/up/srv",
      { "/home/alice/up": { link: "../mallory" } },
      /^\/home\/mallory is owned by uid 1001/,
    ],
    [
      "a file on the way",
      "/etc/passwd/srv",
      {},
      /^\/etc\/passwd is not a directory/,
    ],
    [
      "a symlink loop",
      "/home/alice/loop/srv",
      { "/home/alice/loop": { link: "/home/alice/loop" } },
      /too many levels of symbolic links/,
    ],
  ];
  for (const [name, path, entries, expected] of rows) {
    const problem = check(path, entries);
    assert.ok(problem !== null, `${name}: accepted`);
    assert.match(problem, expected, name);
  }
});

Deno.test("checkAncestors: a symlink to a safe place, and `..`, resolve like the kernel", () => {
  assert.equal(
    check("/home/alice/data/srv", { "/home/alice/data": { link: "/tmp/srv-1000" } }),
    null,
  );
  assert.equal(check("/home/alice/../alice/.local/state"), null);
  assert.equal(check("/home/alice/rel", { "/home/alice/rel": { link: ".local/state" } }), null);
});

Deno.test("checkAncestors: nothing to check without a uid (Windows) or for a relative path", () => {
  assert.equal(check("/home/mallory/srv", {}, null), null);
  assert.equal(check("relative/dir"), null);
});

async function withTemp(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-datadir-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("prepareDataDir: created 0700 whatever the umask; a 0755 one is kept", {
  ignore: unixOnly("Unix modes"),
}, async () => {
  await withTemp((dir) => {
    const old = Deno.umask(0);
    try {
      prepareDataDir(`${dir}/a/data`);
    } finally {
      Deno.umask(old);
    }
    assert.equal(Deno.statSync(`${dir}/a/data`).mode! & 0o7777, 0o700);
    Deno.mkdirSync(`${dir}/open`);
    Deno.chmodSync(`${dir}/open`, 0o755);
    prepareDataDir(`${dir}/open`);
  });
});

Deno.test("prepareDataDir: writable by others, or owned by another user: unsafe", {
  ignore: unixOnly("Unix modes and owners"),
}, async () => {
  await withTemp((dir) => {
    for (const mode of [0o770, 0o757, 0o1777]) {
      const data = `${dir}/m${mode.toString(8)}`;
      Deno.mkdirSync(data);
      Deno.chmodSync(data, mode);
      assert.throws(
        () => prepareDataDir(data),
        (e) =>
          e instanceof DataDirError && e.unsafe &&
          e.message.includes(`other users may write to it`) &&
          e.message.includes(`chmod go-w ${data}`),
      );
    }
    // Seen as another user: this temp dir is ours, not theirs.
    const mine = `${dir}/mine`;
    Deno.mkdirSync(mine, { mode: 0o700 });
    const me = Deno.uid()!;
    const them = me === 4242 ? 4243 : 4242;
    assert.throws(
      () => prepareDataDir(mine, them),
      (e) =>
        e instanceof DataDirError && e.unsafe &&
        // As root the temp dir's parent passes (root may own ancestors) and
        // the data dir itself is refused; as anyone else, already its parent.
        new RegExp(`owned by uid ${me}, not by (root or )?this user \\(uid ${them}\\)`).test(
          e.message,
        ),
    );
  });
});

Deno.test("prepareStoreFile: a new store is a valid 0600 SQLite file, never an empty one", {
  ignore: unixOnly("Unix modes"),
}, async () => {
  await withTemp((dir) => {
    const path = `${dir}/srv.db`;
    // What a srv killed while creating it leaves behind is cleared.
    Deno.writeTextFileSync(`${path}.new`, "half");
    const old = Deno.umask(0);
    try {
      assert.equal(prepareStoreFile(path), true);
    } finally {
      Deno.umask(old);
    }
    const info = Deno.statSync(path);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.ok(info.size > 0, "the header is written before the file gets its name");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["srv.db"]);
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE t (x)");
    db.close();
    assert.equal(prepareStoreFile(path), false, "an existing store is not created again");
  });
});

Deno.test("prepareStoreFile: 0 bytes and read-only are refused; loose modes are tightened", {
  ignore: unixOnly("Unix modes"),
}, async () => {
  await withTemp((dir) => {
    const path = `${dir}/srv.db`;
    Deno.writeFileSync(path, new Uint8Array());
    assert.throws(
      () => prepareStoreFile(path),
      (e) => e instanceof DataDirError && !e.unsafe && /is empty \(0 bytes\)/.test(e.message),
    );
    Deno.removeSync(path);
    prepareStoreFile(path);
    Deno.chmodSync(path, 0o444);
    assert.throws(
      () => prepareStoreFile(path),
      (e) => e instanceof DataDirError && /is read-only \(mode 0444\)/.test(e.message),
    );
    Deno.chmodSync(path, 0o644);
    Deno.writeTextFileSync(`${path}-wal`, "");
    Deno.chmodSync(`${path}-wal`, 0o664);
    prepareStoreFile(path);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(Deno.statSync(`${path}-wal`).mode! & 0o777, 0o600);
  });
});

Deno.test("lockDataDir: waits for the holder to let go, saying so once; gives up after the wait", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/srv.lock`;
    const held = await tryLockFile(path);
    assert.ok(held !== null);
    const waits: number[] = [];
    const taken = lockDataDir(path, 10_000, (_, ms) => {
      waits.push(ms);
      held.close(); // the other srv finishes its shutdown
    });
    const lock = await taken;
    assert.deepEqual(waits, [10_000]);
    if (Deno.build.os !== "windows") assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);

    await assert.rejects(
      lockDataDir(path, 50),
      (e) =>
        e instanceof DataDirError &&
        e.message === `another srv is using the data dir ${dir} (lock ${path} is held after ` +
            `waiting 0.05 s (--lock-wait))`,
    );
    await assert.rejects(lockDataDir(path, 0), /lock .* is held\)$/);
    lock.close();
  });
});

Deno.test("lockDataDir: an abort while waiting gives up at once with LockWaitAborted", async () => {
  await withTemp(async (dir) => {
    const path = `${dir}/srv.lock`;
    const held = await tryLockFile(path);
    assert.ok(held !== null);
    const stop = new AbortController();
    // Aborted as the wait starts: without the abort it would wait 60 s.
    const waiting = lockDataDir(path, 60_000, () => stop.abort("SIGHUP"), stop.signal);
    await assert.rejects(
      waiting,
      (e) => e instanceof LockWaitAborted && e instanceof DataDirError && /SIGHUP$/.test(e.message),
    );
    await assert.rejects(lockDataDir(path, 60_000, undefined, stop.signal), LockWaitAborted);
    held.close();
  });
});

Deno.test("describeFailure: a full disk and the page cap say so, not 'not an SQLite database'", () => {
  const full = new Error("database or disk is full");
  assert.equal(
    describeFailure("/d/srv.db", full),
    "the disk holding /d/srv.db is full (database or disk is full): free some space, then start srv again",
  );
  assert.match(describeFailure("/d/srv.db", full, 40), /page cap \(SRV_STORE_MAX_PAGES=40\)/);
  assert.equal(
    describeFailure("/d/srv.db", new Error("file is not a database")),
    "/d/srv.db is not an SQLite database (file is not a database)",
  );
});

Deno.test("--lock-wait: a duration (seconds, fractions, ms, and 0 allowed), default 10 s, anything else a usage error", () => {
  assert.equal(parseServeArgs([]).lockWaitMs, 10_000);
  assert.equal(parseServeArgs(["--lock-wait", "0"]).lockWaitMs, 0);
  assert.equal(parseServeArgs(["--lock-wait", "2.5"]).lockWaitMs, 2500);
  assert.equal(parseServeArgs(["--lock-wait", "300ms"]).lockWaitMs, 300);
  for (const bad of ["+1", "ten", "1e3", "3601", ""]) {
    assert.throws(
      () => parseServeArgs(["--lock-wait", bad]),
      /--lock-wait must be a duration from 0 ms to 1 h/,
    );
  }
});

Deno.test("DurableEventLog.open throws StoreError for every data dir rule, the rule as its cause", {
  ignore: unixOnly("Unix modes"),
}, async () => {
  await withTemp(async (dir) => {
    const data = `${dir}/data`;
    Deno.mkdirSync(data);
    Deno.chmodSync(data, 0o777);
    const error = await DurableEventLog.open({ dataDir: data }).catch((e) => e);
    assert.ok(error instanceof StoreError, String(error));
    assert.ok(error.cause instanceof DataDirError && error.cause.unsafe);
    assert.match(error.message, /other users may write to it \(mode 0777\)/);
  });
});

Deno.test("`deno task start -- --memory`: serve drops the `--` deno task passes before its flags", () => {
  const config = parseServeArgs(["--", "--memory", "--lock-wait", "0"]);
  assert.equal(config.memory, true);
  assert.equal(config.lockWaitMs, 0);
  // Anything that is not a flag is still refused: serve takes no operands.
  assert.throws(() => parseServeArgs(["--", "--memory", "extra"]), /extra/);
});
