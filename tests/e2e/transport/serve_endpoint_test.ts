// Integration: where `srv serve` listens and that it is the only server
// there, through real processes and real sockets (named pipes on Windows).
// `deno task test` runs this file for both transports (see deno.json).
import assert from "node:assert/strict";
import { pipeNameForDataDir } from "../../../srv/transport/endpoint.ts";
import {
  ON_WINDOWS,
  runSrv,
  startSrv,
  TestClient,
  testEndpoint,
  testTransport,
  unixOnly,
  windowsOnly,
  withSrv,
} from "../../_harness.ts";

Deno.test("a second srv on a live endpoint exits 3 saying it is already running", async () => {
  await withSrv(async (srv, connect) => {
    const a = await connect();
    await a.register(1);
    const flags = testTransport() === "node" && !ON_WINDOWS ? ["--transport", "node"] : [];
    const second = await runSrv(["serve", "--socket", srv.socket, "--memory", ...flags]);
    assert.equal(second.code, 3, second.stderr);
    assert.match(second.stderr, /already running/);
    assert.equal(second.stdout, "", "no readiness line from the loser");
    // The first server is untouched and still serving.
    assert.equal((await a.request({ cmd: "ping", nonce: 1 })).event, "pong");
  });
});

Deno.test("eight clients at once all get every broadcast", async () => {
  // Windows: Deno caps a pipe's instances at NODE_PENDING_PIPE_INSTANCES
  // (default 4); srv raises it, and this is the test that shows it did.
  await withSrv(async (_srv, connect) => {
    const clients = [];
    for (let i = 0; i < 8; i++) clients.push(await connect());
    await clients[0].register(10);
    for (const c of clients.slice(1)) {
      assert.deepEqual((await c.take(3)).map((e) => e.event), [
        "process_spawned",
        "lifecycle_phase_changed",
        "registered",
      ]);
    }
    const info = await clients[0].request({ cmd: "get_server_info" });
    assert.equal(info.connections, 8);
  });
});

Deno.test("clients connecting and leaving one after another are each served", async () => {
  // Deno 2.7.12–2.7.13 stopped accepting on a Windows pipe after the first
  // client left (denoland/deno#33366); this is the shape of that failure.
  await withSrv(async (_srv, connect) => {
    for (let i = 0; i < 10; i++) {
      const c = await connect();
      const events = await c.register(100 + i);
      assert.equal(events.at(-1).event, "registered", `client ${i}`);
      await c.send({ cmd: "goodbye" });
      assert.equal((await c.next()).event, "process_exited");
      assert.ok(await c.closedByServer());
      await c.dispose();
    }
  });
});

Deno.test("without --socket: SRV_SOCKET wins over AGENTMUX_SRV_PIPE_PATH, which is used alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-test-" });
  try {
    const fromSrvSocket = testEndpoint(dir);
    const fromAgentmux = testEndpoint(`${dir}/agentmux`);
    for (
      const [env, expected] of [
        [{ SRV_SOCKET: fromSrvSocket, AGENTMUX_SRV_PIPE_PATH: fromAgentmux }, fromSrvSocket],
        [{ SRV_SOCKET: "", AGENTMUX_SRV_PIPE_PATH: fromAgentmux }, fromAgentmux],
      ] as const
    ) {
      const srv = await startSrv({ socket: null, dir, env });
      try {
        assert.equal(srv.socket, expected);
        const client = await TestClient.connect(expected);
        assert.equal((await client.register(1)).at(-1).event, "registered");
        await client.dispose();
      } finally {
        await srv.stop();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Unix default endpoint is $XDG_RUNTIME_DIR/srv/srv.sock, created 0700", {
  ignore: unixOnly("XDG_RUNTIME_DIR default: Windows derives a pipe name instead"),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-test-" });
  const env = { SRV_SOCKET: "", AGENTMUX_SRV_PIPE_PATH: "", XDG_RUNTIME_DIR: dir };
  const srv = await startSrv({ socket: null, dir, env });
  try {
    assert.equal(srv.socket, `${dir}/srv/srv.sock`);
    assert.equal((await Deno.lstat(`${dir}/srv`)).mode! & 0o777, 0o700);
    assert.equal((await Deno.lstat(srv.socket)).mode! & 0o777, 0o600);
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the Windows default endpoint is the pipe named after the data dir's hash16", {
  ignore: windowsOnly("default pipe name: Unix defaults to a socket under XDG_RUNTIME_DIR"),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-test-" });
  const env = { SRV_SOCKET: "", AGENTMUX_SRV_PIPE_PATH: "" };
  const srv = await startSrv({ socket: null, dir, env, flags: ["--memory", "--data-dir", dir] });
  try {
    assert.equal(srv.socket, pipeNameForDataDir(dir));
    assert.match(srv.socket, /^\\\\\.\\pipe\\srv-[0-9a-f]{16}\\srv-command$/);
    const client = await TestClient.connect(srv.socket);
    assert.equal((await client.register(1)).at(-1).event, "registered");
    await client.dispose();
  } finally {
    await srv.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Windows refuses a non-pipe endpoint and --transport unix with exit 4", {
  ignore: windowsOnly("Windows endpoint rules"),
}, async () => {
  const notAPipe = await runSrv(["serve", "--socket", "C:\\srv.sock", "--memory"]);
  assert.equal(notAPipe.code, 4, notAPipe.stderr);
  assert.match(notAPipe.stderr, /must be a named pipe/);
  const unix = await runSrv(["serve", "--socket", "\\\\.\\pipe\\srv-x", "--transport", "unix"]);
  assert.equal(unix.code, 4, unix.stderr);
  assert.match(unix.stderr, /--transport unix is not available on Windows/);
});

Deno.test("a socket left by a killed srv is replaced, and the new one is 0600 again", {
  ignore: unixOnly("stale socket files: a Windows pipe vanishes with its process"),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-test-" });
  try {
    const first = await startSrv({ dir });
    assert.equal(await first.stop("SIGKILL"), 137);
    assert.ok((await Deno.lstat(first.socket)).isSocket, "the killed srv left its socket");
    const second = await startSrv({ dir, socket: first.socket });
    try {
      assert.equal((await Deno.lstat(second.socket)).mode! & 0o777, 0o600);
      const c = await TestClient.connect(second.socket);
      assert.equal((await c.register(1)).at(-1).event, "registered");
      await c.dispose();
    } finally {
      await second.stop();
    }
    // Read once the process is gone, so all of its stderr is in.
    assert.match(second.stderr(), /removed a stale socket/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--transport and --data-dir are documented; a bad --transport exits 2", async () => {
  const help = await runSrv(["serve", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--transport auto\|unix\|node/);
  assert.match(help.stdout, /--data-dir DIR/);
  const bad = await runSrv(["serve", "--transport", "tcp"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--transport must be one of auto, unix, node, got "tcp"/);
});
