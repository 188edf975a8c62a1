// Codec unit tests: docs/PROTOCOL.md §2–§4 (command shapes, parse errors, u64
// exactness, event field order). Imports the core modules it tests directly.
import assert from "node:assert/strict";
import { type Command, type Event, isLogged, U64_MAX } from "../../srv/core/protocol.ts";
import {
  COMMAND_NAMES,
  COMMAND_REGISTRY,
  commandShapeAccepts,
  DOMAIN_EVENT_NAMES,
} from "../../srv/core/command_schema.ts";
import {
  decodeCommand,
  decodeEvent,
  encodeCommand,
  encodeEvent,
  encodeEventList,
  encodeEventListLine,
  encodeEventListRuns,
  parseJson,
} from "../../srv/core/codec.ts";

const W = "11111111-1111-4111-8111-111111111111";
const T = "22222222-2222-4222-8222-222222222222";
const B = "33333333-3333-4333-8333-333333333333";

/** One valid instance of every command srv accepts. */
const VALID: Record<string, Record<string, unknown>> = {
  register: { cmd: "register", kind: "host", pid: 100, version: "1.0" },
  ping: { cmd: "ping", nonce: 1 },
  goodbye: { cmd: "goodbye" },
  get_srv_snapshot: { cmd: "get_srv_snapshot" },
  get_events: { cmd: "get_events", since: 0 },
  get_server_info: { cmd: "get_server_info" },
  create_workspace: { cmd: "create_workspace", name: "main" },
  delete_workspace: { cmd: "delete_workspace", workspace_id: W, force: true },
  rename_workspace: { cmd: "rename_workspace", workspace_id: W, name: "x" },
  create_tab: { cmd: "create_tab", workspace_id: W, name: "t" },
  delete_tab: { cmd: "delete_tab", workspace_id: W, tab_id: T, force: false },
  rename_tab: { cmd: "rename_tab", tab_id: T, name: "t2" },
  set_active_tab: { cmd: "set_active_tab", workspace_id: W, tab_id: T },
  reorder_tab: { cmd: "reorder_tab", workspace_id: W, tab_id: T, new_index: 3 },
  reorder_tabs_bulk: { cmd: "reorder_tabs_bulk", workspace_id: W, tab_ids: [T] },
  move_tab: { cmd: "move_tab", tab_id: T, src_workspace_id: W, dst_workspace_id: W, dst_index: 0 },
  create_block: { cmd: "create_block", tab_id: T, meta: { kind: "term" } },
  delete_block: { cmd: "delete_block", tab_id: T, block_id: B },
  move_block: { cmd: "move_block", block_id: B, src_tab_id: T, dst_tab_id: T, dst_index: 1 },
  update_workspace_meta: { cmd: "update_workspace_meta", workspace_id: W, meta_patch: { a: 1 } },
  update_tab_meta: { cmd: "update_tab_meta", tab_id: T, meta_patch: { a: null } },
  update_block_meta: { cmd: "update_block_meta", block_id: B, meta_patch: {} },
  batch: {
    cmd: "batch",
    commands: [{ cmd: "rename_tab", tab_id: T, name: "t3" }],
    if_unchanged_since: 4,
  },
};

/** Fields that may be left out. */
const OPTIONAL = new Set([
  "force",
  "meta",
  "observe",
  "if_unchanged_since",
]);

function reasonOf(line: string): string {
  const r = decodeCommand(line);
  assert.equal(r.ok, false, `expected ${line} to fail`);
  return (r as { reason: string }).reason;
}

Deno.test("the valid table covers every command name", () => {
  assert.deepEqual(Object.keys(VALID).sort(), [...COMMAND_NAMES].sort());
});

Deno.test("registry: one CLI verb per domain command, each noun/verb pair once", () => {
  // The types check each row against its command; they cannot see two rows
  // claiming the same `srv <noun> <verb>`.
  const verbs = Object.values(COMMAND_REGISTRY).flatMap((row) =>
    "cli" in row ? [`${row.cli.noun} ${row.cli.verb}`] : []
  );
  assert.equal(verbs.length, 16);
  assert.equal(new Set(verbs).size, verbs.length);
});

Deno.test("registry: DOMAIN_EVENT_NAMES lists each tree event once, and only those", () => {
  assert.equal(DOMAIN_EVENT_NAMES.length, 16);
  assert.equal(new Set(DOMAIN_EVENT_NAMES).size, 16);
  for (const name of DOMAIN_EVENT_NAMES) {
    assert.equal(isLogged({ event: name } as Event), true, name);
  }
});

Deno.test("every command shape decodes to itself", () => {
  for (const [name, command] of Object.entries(VALID)) {
    const r = decodeCommand(JSON.stringify(command));
    assert.ok(r.ok, `${name}: ${JSON.stringify(r)}`);
    assert.deepEqual(r.command, command, name);
  }
});

Deno.test("a missing required field is a parse error naming the field", () => {
  for (const [name, command] of Object.entries(VALID)) {
    for (const field of Object.keys(command)) {
      if (field === "cmd" || OPTIONAL.has(field)) continue;
      const copy = { ...command };
      delete copy[field];
      assert.equal(
        reasonOf(JSON.stringify(copy)),
        `missing field \`${field}\``,
        `${name}.${field}`,
      );
    }
  }
});

Deno.test("a wrong type is a parse error naming the field", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ ...VALID.register, pid: "100" }, "pid"],
    [{ ...VALID.register, pid: -1 }, "pid"],
    [{ ...VALID.register, pid: 1.5 }, "pid"],
    [{ ...VALID.register, pid: 2 ** 32 }, "pid"],
    [{ ...VALID.register, kind: "daemon" }, "kind"],
    [{ ...VALID.register, version: 1 }, "version"],
    [{ ...VALID.ping, nonce: -1 }, "nonce"],
    [{ ...VALID.ping, nonce: "1" }, "nonce"],
    [{ ...VALID.get_events, since: 0.5 }, "since"],
    [{ ...VALID.create_workspace, name: null }, "name"],
    [{ ...VALID.delete_tab, force: "yes" }, "force"],
    [{ ...VALID.reorder_tab, new_index: -2 }, "new_index"],
    [{ ...VALID.reorder_tabs_bulk, tab_ids: [1] }, "tab_ids.0"],
    [{ ...VALID.update_tab_meta, meta_patch: [1] }, "meta_patch"],
    [{ ...VALID.update_tab_meta, meta_patch: "x" }, "meta_patch"],
    [{ ...VALID.update_block_meta, meta_patch: null }, "meta_patch"],
  ];
  for (const [command, field] of cases) {
    const reason = reasonOf(JSON.stringify(command));
    assert.match(reason, new RegExp(`^invalid value for \`${field.replace(".", "\\.")}\``), reason);
  }
});

Deno.test("unknown cmd, missing cmd, bad JSON and non-objects are parse errors", () => {
  assert.equal(reasonOf('{"cmd":"fly"}'), "unknown command `fly`");
  assert.equal(reasonOf('{"nonce":1}'), "missing field `cmd`");
  assert.equal(reasonOf('{"cmd":7}'), "`cmd` must be a string");
  assert.equal(reasonOf("[1,2]"), "expected a JSON object");
  assert.equal(reasonOf("null"), "expected a JSON object");
  assert.equal(reasonOf('"ping"'), "expected a JSON object");
  assert.match(reasonOf('{"cmd":"ping",'), /JSON/);
  assert.match(reasonOf("not json"), /JSON/);
});

Deno.test("unknown fields are ignored and optional fields may be null or absent", () => {
  const r = decodeCommand('{"cmd":"ping","nonce":5,"extra":{"deep":[1]}}');
  assert.ok(r.ok);
  assert.equal((r.command as { nonce: number }).nonce, 5);
  for (const force of ["null", "true"]) {
    const d = decodeCommand(`{"cmd":"delete_workspace","workspace_id":"${W}","force":${force}}`);
    assert.ok(d.ok, force);
  }
  const noForce = decodeCommand(`{"cmd":"delete_workspace","workspace_id":"${W}"}`);
  assert.ok(noForce.ok);
});

Deno.test("create_block meta defaults to null and may be any JSON", () => {
  const absent = decodeCommand(`{"cmd":"create_block","tab_id":"${T}"}`);
  assert.ok(absent.ok);
  assert.equal((absent.command as { meta: unknown }).meta, null);
  for (const meta of ["1", '"s"', "[1,{}]", "null", '{"a":{"b":null}}']) {
    const r = decodeCommand(`{"cmd":"create_block","tab_id":"${T}","meta":${meta}}`);
    assert.ok(r.ok, meta);
    assert.deepEqual((r.command as { meta: unknown }).meta, JSON.parse(meta));
  }
});

Deno.test("launcher-pipe commands parse as not accepted here", () => {
  for (const cmd of ["get_snapshot", "report_window_opened", "report_"]) {
    const r = decodeCommand(`{"cmd":"${cmd}","anything":[1,2]}`);
    assert.ok(r.ok, cmd);
    assert.deepEqual(r.command, { cmd });
  }
});

Deno.test("u64 nonce and since keep every digit up to 2^64-1", () => {
  for (const digits of ["9007199254740991", "9007199254740993", "18446744073709551615"]) {
    const r = decodeCommand(`{"cmd":"ping","nonce":${digits}}`);
    assert.ok(r.ok, digits);
    const nonce = (r.command as { nonce: number | bigint }).nonce;
    assert.equal(String(nonce), digits);
    const pong = encodeEvent({ event: "pong", nonce, version: 1 });
    assert.equal(pong, `{"event":"pong","nonce":${digits},"version":1}`);
  }
  const since = decodeCommand(`{"cmd":"get_events","since":${U64_MAX}}`);
  assert.ok(since.ok);
  assert.equal((since.command as { since: bigint }).since, U64_MAX);
});

Deno.test("integers outside u64 are parse errors", () => {
  assert.match(reasonOf('{"cmd":"ping","nonce":18446744073709551616}'), /nonce/);
  assert.match(reasonOf('{"cmd":"ping","nonce":-18446744073709551615}'), /nonce/);
  assert.match(reasonOf('{"cmd":"ping","nonce":1e300}'), /nonce/);
});

Deno.test("parseJson keeps big integers exact anywhere and leaves small ones as numbers", () => {
  assert.deepEqual(parseJson('{"a":[18446744073709551615,1],"b":"9999999999999999999"}'), {
    a: [18446744073709551615n, 1],
    b: "9999999999999999999",
  });
});

const EVENTS: Event[] = [
  {
    event: "registered",
    client_id: 1,
    launcher_pid: 5120,
    launcher_version: "0.1.0",
    instance_id: "i",
    protocol: 2,
    version: 3,
  },
  { event: "pong", nonce: 1, version: 2 },
  {
    event: "error",
    code: "not_registered",
    message: "Ping before Register",
    fatal: false,
    version: 0,
  },
  { event: "process_spawned", pid: 100, kind: "host", client_version: "1.0", version: 1 },
  { event: "process_exited", pid: 100, code: 0, version: 6 },
  { event: "lifecycle_phase_changed", from: "starting", to: "running", version: 2 },
  { event: "workspace_created", workspace_id: W, name: "n", version: 7 },
  { event: "workspace_deleted", workspace_id: W, block_ids: [B], version: 8 },
  {
    event: "tab_moved",
    tab_id: T,
    src_workspace_id: W,
    dst_workspace_id: W,
    dst_index: 0,
    new_src_active_tab_id: null,
    new_dst_active_tab_id: T,
    version: 9,
  },
];

Deno.test("events encode compactly, tag first and version last, and decode back", () => {
  for (const event of EVENTS) {
    const json = encodeEvent(event);
    assert.ok(!json.includes(" ") || event.event === "error", json);
    assert.ok(json.startsWith(`{"event":"${event.event}",`), json);
    assert.ok(json.endsWith(`"version":${event.version}}`), json);
    const back = decodeEvent(json);
    assert.ok(back.ok);
    assert.deepEqual(back.event, event);
  }
  assert.equal(
    encodeEvent(EVENTS[3]),
    '{"event":"process_spawned","pid":100,"kind":"host","client_version":"1.0","version":1}',
  );
});

Deno.test("decodeEvent rejects lines that are not events", () => {
  assert.equal(decodeEvent('{"version":1}').ok, false);
  assert.equal(decodeEvent('{"event":"pong"}').ok, false);
  assert.equal(decodeEvent("[]").ok, false);
  assert.equal(decodeEvent("{").ok, false);
});

Deno.test("decodeEvent trusts versions once: non-negative integers, numbers while safe", () => {
  const version = (line: string) => {
    const r = decodeEvent(line);
    return r.ok ? r.event.version : r.reason;
  };
  assert.equal(version('{"event":"pong","nonce":1,"version":7}'), 7);
  // Above 2^53 - 1 a version stays exact (u64, docs/PROTOCOL.md §1), as a bigint.
  assert.equal(version('{"event":"pong","nonce":1,"version":9007199254740993}'), 9007199254740993n);
  assert.equal(version('{"event":"pong","nonce":1,"version":-1}'), "invalid value for `version`");
  assert.equal(version('{"event":"pong","nonce":1,"version":1.5}'), "invalid value for `version`");
  assert.equal(version('{"event":"pong","nonce":1,"version":"1"}'), "invalid value for `version`");
  // The versions inside the private answers the client orders by.
  assert.equal(
    version('{"event":"event_list","events":[{"event":"pong","version":-2}],"version":3}'),
    "invalid value for `events[].version`",
  );
  const info = (fields: string) =>
    version(`{"event":"server_info","event_version":3,${fields},"version":0}`);
  assert.equal(info('"last_command":{"cmd":"ping","first":3,"last":3}'), 0);
  assert.equal(info('"last_command":{"cmd":"ping","first":null,"last":null}'), 0);
  assert.equal(info('"last_command":null'), 0);
  assert.equal(
    info('"last_command":{"cmd":"ping","first":"3","last":3}'),
    "invalid value for `last_command.first`",
  );
  assert.equal(
    version('{"event":"server_info","event_version":-1,"last_command":null,"version":0}'),
    "invalid value for `event_version`",
  );
});

Deno.test("event_list is built from the log's bytes and parses as the documented shape", () => {
  const lines = EVENTS.slice(0, 2).map(encodeEvent);
  const json = encodeEventList(lines, true, "inst", 42);
  assert.deepEqual(JSON.parse(json), {
    event: "event_list",
    events: EVENTS.slice(0, 2),
    truncated: true,
    instance_id: "inst",
    version: 42,
  });
  assert.equal(
    encodeEventList([], false, "i", 0),
    '{"event":"event_list","events":[],"truncated":false,"instance_id":"i","version":0}',
  );
});

Deno.test("event_list as bytes is the string form in UTF-8, lone surrogates and all", () => {
  const lines = [
    ...EVENTS.slice(0, 2).map(encodeEvent),
    '{"event":"pong","note":"é✓😀","version":7}',
    `{"event":"pong","note":"${"\ud800"}x","version":8}`,
  ];
  // Past a million characters the events are encoded in groups; one wide
  // character anywhere sends the whole reply down the measured path.
  const long = Array.from(
    { length: 5 },
    (_, i) => `{"pad":"${"z".repeat(300_000)}","version":${i}}`,
  );
  const longWide = [...long.slice(0, 4), `{"pad":"${"ü".repeat(300_000)}","version":4}`];
  for (const events of [[], lines.slice(0, 1), lines, long, longWide]) {
    // As the log's runs of lines, cut anywhere between events.
    const bytes = events.map((e) => new TextEncoder().encode(e + "\n"));
    for (const cut of [1, 2, 3]) {
      const runs: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += cut) {
        const group = bytes.slice(i, i + cut);
        const run = new Uint8Array(group.reduce((n, b) => n + b.length, 0));
        group.reduce((at, b) => (run.set(b, at), at + b.length), 0);
        runs.push(run);
      }
      assert.deepEqual(
        encodeEventListRuns(runs, false, "i", 9),
        encodeEventListLine(events, false, "i", 9),
      );
    }
    assert.deepEqual(
      encodeEventListLine(events, true, "inst-é", 42),
      new TextEncoder().encode(encodeEventList(events, true, "inst-é", 42) + "\n"),
    );
  }
});

Deno.test("only state changes and pongs are logged", () => {
  const logged = EVENTS.filter(isLogged).map((e) => e.event);
  assert.deepEqual(logged, [
    "registered",
    "pong",
    "process_spawned",
    "process_exited",
    "lifecycle_phase_changed",
    "workspace_created",
    "workspace_deleted",
    "tab_moved",
  ]);
  const unlogged: Event["event"][] = ["error", "srv_snapshot", "event_list", "server_info"];
  for (const name of unlogged) assert.equal(isLogged({ event: name } as Event), false, name);
});

Deno.test("commands round-trip through the client-side encoder", () => {
  for (const command of Object.values(VALID)) {
    const r = decodeCommand(encodeCommand(command as unknown as Command));
    assert.ok(r.ok);
    assert.deepEqual(r.command, command);
  }
});

Deno.test("the fast shape check and the superstruct schema accept exactly the same values", () => {
  const odd: unknown[] = [
    undefined,
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 32 - 1,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    NaN,
    Infinity,
    U64_MAX,
    U64_MAX + 1n,
    -1n,
    "",
    "host",
    "tool",
    [],
    ["a", "b"],
    ["a", 1],
    {},
    { a: null },
  ];
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let accepted = 0;
  let rejected = 0;
  for (const [name, valid] of Object.entries(VALID)) {
    for (let trial = 0; trial < 400; trial++) {
      const value: Record<string, unknown> = { ...valid };
      for (const field of Object.keys(valid)) {
        if (field !== "cmd" && rnd() < 0.4) value[field] = odd[Math.floor(rnd() * odd.length)];
      }
      if (rnd() < 0.3) value.extra = odd[Math.floor(rnd() * odd.length)];
      const { fast, schema } = commandShapeAccepts(name, value);
      assert.equal(fast, schema, `${name}: ${String(Object.entries(value))}`);
      if (schema) accepted++;
      else rejected++;
    }
  }
  assert.ok(accepted > 1000 && rejected > 1000, `${accepted} accepted, ${rejected} rejected`);
});

Deno.test("a parse error quotes at most the start of a huge bad value, so errors stay small", () => {
  const huge = "a".repeat(100_000);
  const result = decodeCommand(
    JSON.stringify({ cmd: "create_tab", workspace_id: [huge], name: "x" }),
  );
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.match(result.reason, /^invalid value for `workspace_id`: /);
  assert.match(result.reason, /… \(\d+ characters\)$/);
  assert.ok(result.reason.length < 300, `${result.reason.length} characters`);
});
