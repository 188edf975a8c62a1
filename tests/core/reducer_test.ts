// Reducer unit tests for the lifecycle commands: docs/PROTOCOL.md §6.
import assert from "node:assert/strict";
import { decide, type ReducerEvent } from "../../srv/core/decide.ts";
import { evolve } from "../../srv/core/evolve.ts";
import { initialState, type State } from "../../srv/core/state.ts";
import { Driver } from "../_fixtures.ts";

const register = (pid: number, kind: "host" | "tool" = "host", version = "1.0") =>
  ({ cmd: "register", kind, pid, version }) as const;

Deno.test("first register: process_spawned, starting→running, registered naming the server", () => {
  const identity = { pid: 5120, version: "0.1.0", instanceId: "i-1" };
  const d = new Driver(undefined, undefined, { identity });
  assert.deepEqual(d.run(register(100)), [
    { event: "process_spawned", pid: 100, kind: "host", client_version: "1.0", version: 1 },
    { event: "lifecycle_phase_changed", from: "starting", to: "running", version: 2 },
    {
      event: "registered",
      client_id: 1,
      launcher_pid: 5120,
      launcher_version: "0.1.0",
      instance_id: "i-1",
      protocol: 2,
      version: 3,
    },
  ]);
  assert.equal(d.state.lifecycle, "running");
  assert.equal(d.state.processes.get(100)?.status, "running");
  assert.equal(d.state.eventVersion, 3);
});

Deno.test("register without a server identity in the context names pid 0 and empty strings", () => {
  const registered = new Driver().run(register(100)).at(-1);
  assert.deepEqual(registered, {
    event: "registered",
    client_id: 1,
    launcher_pid: 0,
    launcher_version: "",
    instance_id: "",
    protocol: 2,
    version: 3,
  });
});

Deno.test("a later register does not change the lifecycle again and gets the next client id", () => {
  const d = new Driver();
  d.run(register(100));
  const events = d.run(register(200, "tool", "x"));
  assert.deepEqual(events.map((e) => e.event), ["process_spawned", "registered"]);
  assert.equal((events[1] as { client_id: number }).client_id, 2);
  assert.deepEqual(events.map((e) => e.version), [4, 5]);
});

Deno.test("register of a running pid is a broadcast already_registered with a version, record untouched", () => {
  const d = new Driver();
  d.run(register(100, "host", "1.0"));
  const before = d.state.processes.get(100);
  assert.deepEqual(d.run(register(100, "tool", "x")), [
    {
      event: "error",
      code: "already_registered",
      message: "pid 100 is already registered with srv",
      fatal: false,
      version: 4,
    },
  ]);
  assert.equal(d.state.processes.get(100), before);
  assert.equal(d.state.eventVersion, 4);
});

Deno.test("goodbye marks the pid exited once; a second goodbye emits nothing", () => {
  const d = new Driver();
  d.run(register(100));
  assert.deepEqual(d.run({ cmd: "goodbye" }, 100), [
    { event: "process_exited", pid: 100, code: 0, version: 4 },
  ]);
  assert.equal(d.state.processes.get(100)?.status, "exited");
  assert.equal(d.state.processes.get(100)?.exitCode, 0);
  assert.deepEqual(d.run({ cmd: "goodbye" }, 100), []);
  assert.deepEqual(d.run({ cmd: "goodbye" }, null), []);
  assert.deepEqual(d.run({ cmd: "goodbye" }, 999), []);
  assert.equal(d.state.eventVersion, 4);
});

Deno.test("an exited pid may register again", () => {
  const d = new Driver();
  d.run(register(100));
  d.run({ cmd: "goodbye" }, 100);
  const events = d.run(register(100, "tool", "2"));
  assert.deepEqual(events.map((e) => e.event), ["process_spawned", "registered"]);
  assert.equal(d.state.processes.get(100)?.status, "running");
  assert.equal(d.state.processes.get(100)?.clientVersion, "2");
});

Deno.test("ping answers pong with the nonce, big ones included", () => {
  const d = new Driver();
  assert.deepEqual(d.run({ cmd: "ping", nonce: 18446744073709551615n }), [
    { event: "pong", nonce: 18446744073709551615n, version: 1 },
  ]);
});

Deno.test("get_srv_snapshot takes a version and shows the lifecycle", () => {
  const d = new Driver();
  d.run(register(1));
  const [snap] = d.run({ cmd: "get_srv_snapshot" });
  assert.equal(snap.event, "srv_snapshot");
  assert.equal(snap.version, 4);
  assert.equal((snap as { lifecycle: string }).lifecycle, "running");
});

Deno.test("launcher-pipe commands get a broadcast invalid_command naming the command", () => {
  const d = new Driver();
  d.run(register(1));
  assert.deepEqual(d.run({ cmd: "report_window_opened" }), [
    {
      event: "error",
      code: "invalid_command",
      message: "srv reducer does not accept: report_window_opened",
      fatal: false,
      version: 4,
    },
  ]);
  assert.equal(d.run({ cmd: "get_snapshot" })[0].version, 5);
});

Deno.test("decide does not touch the state it is given", () => {
  const s = initialState();
  const frozen = JSON.stringify([...s.processes]) + s.eventVersion;
  decide(s, register(5), { registeredPid: null, newId: () => "x" });
  assert.equal(JSON.stringify([...s.processes]) + s.eventVersion, frozen);
});

Deno.test("versions rise strictly across a mixed sequence, and evolve alone rebuilds the state", () => {
  const d = new Driver();
  d.run(register(1));
  d.run({ cmd: "ping", nonce: 1 });
  d.run(register(1));
  d.run({ cmd: "get_srv_snapshot" });
  d.run({ cmd: "goodbye" }, 1);
  d.run(register(1, "tool"));
  d.run({ cmd: "report_x" });
  const versions = d.events.map((e) => e.version);
  versions.forEach((v, i) => assert.equal(v, i + 1));
  const rebuilt = d.events.reduce<State>((s, e: ReducerEvent) => evolve(s, e), initialState());
  assert.deepEqual(rebuilt, d.state);
});

Deno.test("a refusal quoting a huge id stays small: the message is cut, and says how long it was", () => {
  // A refusal is broadcast to every reader; the id comes from the client.
  const huge = "x".repeat(1_000_000);
  const [refusal] = new Driver().run({ cmd: "rename_tab", tab_id: huge, name: "logs" });
  assert.equal(refusal.event, "error");
  if (refusal.event !== "error") return;
  assert.match(refusal.message, /^RenameTab: tab not found: x+… \(1000026 characters\)$/);
  assert.ok(refusal.message.length < 1100, `${refusal.message.length} characters`);
  // An ordinary refusal is untouched.
  const [plain] = new Driver().run({ cmd: "rename_tab", tab_id: "t1", name: "logs" });
  assert.deepEqual(plain.event === "error" && plain.message, "RenameTab: tab not found: t1");
});
