// Integration: a real srv process on a real socket in a temp dir, on the
// transport under test (SRV_TEST_TRANSPORT). The protocol itself is tested
// in-process (tests/server/server_test.ts); a few of those tests run here too,
// as the smoke test of the transport: framing, broadcast across
// connections, half-close and a server-side close all cross the real socket.
import assert from "node:assert/strict";
import { runSrv, startSrv, TestClient, unixOnly, withSrv } from "../../_harness.ts";
import {
  lastLineBeforeHalfClose,
  lineCapClosesOffender,
  replaySection9,
} from "../../_protocol_cases.ts";
import { SRV_VERSION } from "../../../srv/version.ts";
import { parseServeArgs } from "../../../srv/cli/serve_args.ts";

Deno.test("docs/PROTOCOL.md §9 replayed line by line across two clients", replaySection9(withSrv));

Deno.test(
  "the line cap closes only the offender, and its pid gets a synthetic goodbye",
  lineCapClosesOffender(withSrv),
);

Deno.test("a last line without \\n before the client shuts down writing is still served", {
  ignore: unixOnly("half-close test: a Windows named pipe has no write-only shutdown"),
}, lastLineBeforeHalfClose(withSrv));

Deno.test("readiness line, then SIGTERM: exit 0 and the socket file is gone", {
  ignore: unixOnly("SIGTERM test: Windows has no SIGTERM to catch, and a pipe is no file"),
}, async () => {
  const srv = await startSrv();
  assert.match(
    srv.readyLine,
    new RegExp(
      `^srv ready socket=${srv.socket} pid=\\d+ version=${SRV_VERSION} instance=[0-9a-f-]{36}$`,
    ),
  );
  assert.equal(srv.pid, srv.child.pid);
  const info = await Deno.lstat(srv.socket);
  assert.ok(info.isSocket);
  assert.equal(info.mode! & 0o777, 0o600);
  const client = await TestClient.connect(srv.socket);
  await client.register(1);
  assert.equal(await srv.stop("SIGTERM"), 0);
  assert.ok(await client.closedByServer());
  await client.dispose();
  await assert.rejects(Deno.lstat(srv.socket), Deno.errors.NotFound);
});

Deno.test("SIGINT shuts down gracefully too", {
  ignore: unixOnly("SIGINT test: a child cannot be sent SIGINT on Windows"),
}, async () => {
  const srv = await startSrv();
  const socket = srv.socket;
  assert.equal(await srv.stop("SIGINT"), 0);
  await assert.rejects(Deno.lstat(socket), Deno.errors.NotFound);
});

Deno.test("--help documents every serve flag; a bad flag exits 2 with the reason", async () => {
  const help = await runSrv(["serve", "--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--socket",
      "--memory",
      "--max-line-bytes",
      "--max-connections",
      "--max-queue-bytes",
      "--soft-queue-bytes",
      "--soft-queue-time",
      "--max-reply-bytes",
      "--register-timeout",
      "--log-level",
      "--log-format",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  const bad = await runSrv(["serve", "--no-such-flag"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no-such-flag/);
  const removed = await runSrv(["serve", "--max-queue-events", "10"]);
  assert.equal(removed.code, 2);
  assert.match(removed.stderr, /--max-queue-events was removed: .*--soft-queue-bytes/);
  const softAboveHard = await runSrv([
    "serve",
    "--max-queue-bytes",
    "1000",
    "--soft-queue-bytes",
    "2000",
  ]);
  assert.equal(softAboveHard.code, 2);
  assert.match(softAboveHard.stderr, /--soft-queue-bytes \(2000\) must not be above/);
  const badTime = await runSrv(["serve", "--register-timeout", "soon"]);
  assert.equal(badTime.code, 2);
  assert.match(badTime.stderr, /--register-timeout must be a duration/);
  const badNumber = await runSrv(["serve", "--max-line-bytes", "ten"]);
  assert.equal(badNumber.code, 2);
  assert.match(badNumber.stderr, /--max-line-bytes must be a positive integer/);
  const version = await runSrv(["--version"]);
  assert.equal(version.stdout.trim(), `srv ${SRV_VERSION}`);
});

Deno.test("delivery flags: durations in s or ms, and a soft limit that follows a low hard one", () => {
  const defaults = parseServeArgs([]);
  assert.deepEqual(
    [defaults.maxQueueBytes, defaults.softQueueBytes, defaults.softQueueMs],
    [256 * 1024 * 1024, 8 * 1024 * 1024, 10_000],
  );
  assert.equal(defaults.registerTimeoutMs, 10_000);
  assert.equal(defaults.maxReplyBytes, 64 * 1024 * 1024);
  assert.equal(parseServeArgs(["--soft-queue-time", "500ms"]).softQueueMs, 500);
  assert.equal(parseServeArgs(["--soft-queue-time", "2s"]).softQueueMs, 2000);
  assert.equal(parseServeArgs(["--register-timeout", "1.5"]).registerTimeoutMs, 1500);
  assert.equal(parseServeArgs(["--max-queue-bytes", "65536"]).softQueueBytes, 65536);
  assert.throws(() => parseServeArgs(["--soft-queue-time", "0"]), /from 1 ms to 1 h/);
});
