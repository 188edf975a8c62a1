// Integration: one srv per endpoint, stale sockets replaced, and a socket
// path srv refuses when it is not private (docs/PROTOCOL.md §1). Each refusal
// exits with the code the README documents and names the path.
import assert from "node:assert/strict";
import { runSrv, srvCommand, startSrv, unixOnly } from "../../_harness.ts";
import { ExitCode } from "../../../srv/cli/exit_code.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-endpoint-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function serve(socket: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return runSrv(["serve", "--socket", socket, "--memory"]);
}

Deno.test("a second srv on a live endpoint exits 3 naming it; the first keeps serving", {
  ignore: unixOnly("Unix socket files"),
}, async () => {
  const first = await startSrv();
  try {
    const second = await serve(first.socket);
    assert.equal(second.code, ExitCode.endpointInUse);
    assert.match(second.stderr, /another srv is already running at /);
    assert.ok(second.stderr.includes(first.socket), second.stderr);
    assert.equal(second.stdout, "", "no readiness line");
    assert.doesNotMatch(second.stderr, /\n\s+at /, "no stack trace");
    const conn = await Deno.connect({ transport: "unix", path: first.socket });
    conn.close();
  } finally {
    assert.equal(await first.stop(), 0);
  }
});

Deno.test("a live socket of another server (no srv lock) is not taken over: exit 3", {
  ignore: unixOnly("Unix socket files"),
}, async () => {
  await withTempDir(async (dir) => {
    const socket = `${dir}/srv.sock`;
    const other = Deno.listen({ transport: "unix", path: socket });
    try {
      const result = await serve(socket);
      assert.equal(result.code, ExitCode.endpointInUse);
      assert.match(result.stderr, new RegExp(`already running at ${socket}`));
      assert.ok((await Deno.lstat(socket)).isSocket, "the live socket is left alone");
    } finally {
      other.close();
    }
  });
});

Deno.test("a socket left by a killed srv is replaced; a clean stop leaves nothing behind", {
  ignore: unixOnly("Unix socket files and SIGKILL"),
}, async () => {
  await withTempDir(async (dir) => {
    const killed = await startSrv({ dir });
    await killed.stop("SIGKILL");
    assert.ok((await Deno.lstat(killed.socket)).isSocket, "SIGKILL leaves the socket file");

    const next = await startSrv({ dir });
    assert.match(next.stderr(), /removed a stale socket left at/);
    const info = await Deno.lstat(next.socket);
    assert.ok(info.isSocket);
    assert.equal(info.mode! & 0o777, 0o600);
    const conn = await Deno.connect({ transport: "unix", path: next.socket });
    conn.close();
    assert.equal(await next.stop(), 0);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "socket and lock file removed");
  });
});

Deno.test("a file that is not a socket at the path is never deleted: exit 4 naming it", {
  ignore: unixOnly("Unix socket files"),
}, async () => {
  await withTempDir(async (dir) => {
    const cases: [string, (path: string) => Promise<void>][] = [
      ["file.sock", (path) => Deno.writeTextFile(path, "precious")],
      ["dir.sock", (path) => Deno.mkdir(path)],
      ["link.sock", (path) => Deno.symlink(`${dir}/elsewhere`, path)],
    ];
    for (const [name, make] of cases) {
      const socket = `${dir}/${name}`;
      await make(socket);
      const before = await Deno.lstat(socket);
      const result = await serve(socket);
      assert.equal(result.code, ExitCode.endpointUnsafe, `${name}: ${result.stderr}`);
      assert.ok(result.stderr.includes(`${socket} exists and is not a socket`), result.stderr);
      const after = await Deno.lstat(socket);
      assert.equal(after.ino, before.ino, `${name} is still there, untouched`);
    }
    assert.equal(await Deno.readTextFile(`${dir}/file.sock`), "precious");
  });
});

Deno.test("a socket directory owned by another user is refused: exit 4 naming it", {
  ignore: unixOnly("Unix directory ownership"),
}, async () => {
  await withTempDir(async (dir) => {
    let foreign: string;
    let owner: number;
    if (Deno.uid() === 0) {
      foreign = `${dir}/foreign`;
      await Deno.mkdir(foreign, { mode: 0o700 });
      await Deno.chown(foreign, 65534, 65534);
      owner = 65534;
    } else {
      // Not root: "/" is someone else's, and srv writes nothing there.
      foreign = "/";
      owner = (await Deno.lstat("/")).uid!;
    }
    const socket = `${foreign === "/" ? "" : foreign}/srv.sock`;
    const result = await serve(socket);
    assert.equal(result.code, ExitCode.endpointUnsafe, result.stderr);
    assert.ok(
      result.stderr.includes(`socket directory ${foreign} is owned by uid ${owner}`),
      result.stderr,
    );
    await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound);
  });
});

Deno.test("a symlinked socket directory is refused: exit 4 naming it", {
  ignore: unixOnly("Unix socket directories"),
}, async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/real`, { mode: 0o700 });
    await Deno.symlink(`${dir}/real`, `${dir}/link`);
    const result = await serve(`${dir}/link/srv.sock`);
    assert.equal(result.code, ExitCode.endpointUnsafe, result.stderr);
    assert.ok(
      result.stderr.includes(`socket directory ${dir}/link is a symlink`),
      result.stderr,
    );
    assert.deepEqual([...Deno.readDirSync(`${dir}/real`)], [], "nothing created through it");
  });
});

Deno.test("a directory others may write to is refused unless it is sticky", {
  ignore: unixOnly("Unix directory modes"),
}, async () => {
  await withTempDir(async (dir) => {
    const open = `${dir}/open`;
    await Deno.mkdir(open);
    await Deno.chmod(open, 0o777);
    const result = await serve(`${open}/srv.sock`);
    assert.equal(result.code, ExitCode.endpointUnsafe, result.stderr);
    assert.ok(
      result.stderr.includes(`socket directory ${open} is writable by other users (mode 0777)`),
      result.stderr,
    );
    // The sticky bit stops others renaming our socket away, as on /tmp.
    await Deno.chmod(open, 0o1777);
    const srv = await startSrv({ dir: open });
    assert.equal(await srv.stop(), 0);
  });
});

Deno.test("a missing directory is created 0700 and the socket is 0600, whatever the umask", {
  ignore: unixOnly("Unix file modes and umask"),
}, async () => {
  await withTempDir(async (dir) => {
    const socketDir = `${dir}/a/b`;
    const socket = `${socketDir}/srv.sock`;
    // Start under umask 000, so only srv's own care makes the modes private.
    const { cmd, args } = srvCommand(["serve", "--socket", socket, "--memory"]);
    const child = new Deno.Command("sh", {
      args: ["-c", 'umask 000; exec "$0" "$@"', cmd, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`srv exited before it was ready: ${out}`);
        out += value;
      }
      assert.match(out, /^srv ready socket=/);
      reader.releaseLock();
      const dirInfo = await Deno.lstat(socketDir);
      assert.ok(dirInfo.isDirectory && !dirInfo.isSymlink);
      assert.equal(dirInfo.mode! & 0o7777, 0o700);
      assert.equal(dirInfo.uid, Deno.uid());
      const sockInfo = await Deno.lstat(socket);
      assert.ok(sockInfo.isSocket);
      assert.equal(sockInfo.mode! & 0o7777, 0o600);
      assert.equal(sockInfo.uid, Deno.uid());
    } finally {
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0);
      await child.stdout.cancel().catch(() => {});
    }
  });
});
