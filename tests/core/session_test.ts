// Session unit tests: the per-line algorithm of docs/PROTOCOL.md §5, no sockets.
import assert from "node:assert/strict";
import { type ReducerEvent } from "../../srv/core/decide.ts";
import { Session } from "../../srv/core/session.ts";

const enc = new TextEncoder();
const REGISTER = '{"cmd":"register","kind":"host","pid":100,"version":"1.0"}';
const accepted: ReducerEvent[] = [
  { event: "process_spawned", pid: 100, kind: "host", client_version: "1.0", version: 1 },
];

function registered(): Session {
  const s = new Session();
  const step = s.receiveLine(REGISTER);
  assert.equal(step.kind, "reduce");
  if (step.kind === "reduce") s.afterReduce(step.command, accepted);
  return s;
}

Deno.test("before register: each command gets its not_registered message and fatality", () => {
  const table: [string, string, boolean][] = [
    ['{"cmd":"ping","nonce":1}', "Ping before Register", false],
    ['{"cmd":"get_srv_snapshot"}', "GetSrvSnapshot before Register", false],
    ['{"cmd":"get_events","since":0}', "GetEvents before Register", false],
    ['{"cmd":"goodbye"}', "Goodbye before Register", true],
    ['{"cmd":"get_server_info"}', "Command before Register", false],
    ['{"cmd":"create_workspace","name":"x"}', "Command before Register", false],
    ['{"cmd":"get_snapshot"}', "Command before Register", false],
    ['{"cmd":"report_anything","x":1}', "Command before Register", false],
  ];
  for (const [line, message, fatal] of table) {
    const s = new Session();
    assert.deepEqual(s.receiveLine(line), {
      kind: "reply",
      event: { event: "error", code: "not_registered", message, fatal, version: 0 },
      close: fatal,
    }, line);
    assert.equal(s.ended, fatal);
  }
});

Deno.test("parse failures come first, are private version 0 and keep the session open", () => {
  const s = new Session();
  const step = s.receiveLine('{"cmd":"fly"}');
  assert.deepEqual(step, {
    kind: "reply",
    event: {
      event: "error",
      code: "invalid_command",
      message: "parse failed: unknown command `fly`",
      fatal: false,
      version: 0,
    },
    close: false,
  });
  assert.equal(s.ended, false);
  assert.equal(s.receiveLine(REGISTER).kind, "reduce");
});

Deno.test("blank lines are ignored; bytes and CR-free strings both work", () => {
  const s = new Session();
  assert.deepEqual(s.receiveLine(""), { kind: "ignore" });
  assert.deepEqual(s.receiveLine(" \t "), { kind: "ignore" });
  assert.equal(s.receiveLine(enc.encode(REGISTER)).kind, "reduce");
});

Deno.test("invalid UTF-8 is a soft private parse error", () => {
  const s = new Session();
  const step = s.receiveLine(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]));
  assert.equal(step.kind, "reply");
  if (step.kind === "reply") {
    assert.equal(step.event.code, "invalid_command");
    assert.match(step.event.message, /^parse failed: .*UTF-8/);
    assert.equal(step.event.version, 0);
    assert.equal(step.close, false);
  }
  assert.equal(s.ended, false);
});

Deno.test("register goes to the reducer; acceptance binds kind and pid", () => {
  const s = registered();
  assert.deepEqual(s.identity, { kind: "host", pid: 100 });
});

Deno.test("a refused register leaves the session unregistered so it may retry", () => {
  const s = new Session();
  const step = s.receiveLine(REGISTER);
  if (step.kind !== "reduce") throw new Error("expected reduce");
  s.afterReduce(step.command, [{
    event: "error",
    code: "already_registered",
    message: "pid 100 is already registered with srv",
    fatal: false,
    version: 5,
  }]);
  assert.equal(s.identity, null);
  assert.equal(s.receiveLine(REGISTER).kind, "reduce");
});

Deno.test("a second register on the same connection is refused privately without the reducer", () => {
  const s = registered();
  assert.deepEqual(s.receiveLine(REGISTER), {
    kind: "reply",
    event: {
      event: "error",
      code: "already_registered",
      message: "Register sent twice on the same connection",
      fatal: false,
      version: 0,
    },
    close: false,
  });
  assert.deepEqual(s.identity, { kind: "host", pid: 100 });
});

Deno.test("after register: get_events and get_server_info are queries, the rest reduce", () => {
  const s = registered();
  assert.equal(s.receiveLine('{"cmd":"get_events","since":0}').kind, "query");
  assert.equal(s.receiveLine('{"cmd":"get_server_info"}').kind, "query");
  assert.equal(s.receiveLine('{"cmd":"ping","nonce":1}').kind, "reduce");
  assert.equal(s.receiveLine('{"cmd":"get_snapshot"}').kind, "reduce");
  assert.equal(s.receiveLine('{"cmd":"create_workspace","name":"w"}').kind, "reduce");
});

Deno.test("goodbye ends the session: close, no synthetic goodbye owed, later lines ignored", () => {
  const s = registered();
  const step = s.receiveLine('{"cmd":"goodbye"}');
  if (step.kind !== "reduce") throw new Error("expected reduce");
  assert.deepEqual(s.afterReduce(step.command, []), { close: true });
  assert.equal(s.ended, true);
  assert.equal(s.disconnect(), null);
  assert.deepEqual(s.receiveLine('{"cmd":"ping","nonce":1}'), { kind: "ignore" });
});

Deno.test("a registered connection that drops owes a synthetic goodbye; an unregistered one nothing", () => {
  const s = registered();
  assert.deepEqual(s.disconnect(), { cmd: "goodbye" });
  assert.equal(s.identity?.pid, 100);
  assert.equal(new Session().disconnect(), null);
});

Deno.test("an over-long line is a fatal private error", () => {
  const s = registered();
  const step = s.lineTooLong(1024);
  assert.equal(step.kind, "reply");
  if (step.kind === "reply") {
    assert.equal(step.close, true);
    assert.equal(step.event.fatal, true);
    assert.equal(step.event.code, "invalid_command");
    assert.equal(step.event.version, 0);
  }
  assert.equal(s.ended, true);
});
