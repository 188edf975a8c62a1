// Endpoint resolution (docs/PROTOCOL.md §1) and the default data directory, as
// pure functions with injected environments, for every platform.
import assert from "node:assert/strict";
import {
  canonicalForHash,
  defaultDataDir,
  defaultEndpoint,
  hash16,
  isPipeName,
  pipeNameForDataDir,
  resolveEndpoint,
} from "../../srv/transport/endpoint.ts";

// The expected hashes were not produced by srv's code. The first three are
// the published FNV-1a 64-bit test vectors (Fowler/Noll/Vo test suite,
// draft-eastlake-fnv). The path ones were computed with this independent
// Python 3 script, run on the strings exactly as written below:
//
//   def fnv1a64(s):
//       h = 0xcbf29ce484222325
//       for b in s.encode("utf-8"):
//           h ^= b
//           h = (h * 0x100000001b3) & 0xffffffffffffffff
//       return "%016x" % h
const FNV_VECTORS: [string, string][] = [
  ["", "cbf29ce484222325"],
  ["a", "af63dc4c8601ec8c"],
  ["foobar", "85944171f73967e8"],
  ["c:\\users\\alice\\appdata\\local\\srv", "655e8c0e64fe8d45"],
  ["/home/alice/.local/state/srv", "86cfc762e48dc8c2"],
  // Non-ASCII: the hash is over UTF-8 bytes, not UTF-16 code units.
  ["c:\\users\\j\u00fcrgen\\appdata\\local\\srv", "d60d38495032ec54"],
];

Deno.test("hash16 matches FNV-1a 64 vectors computed outside srv", () => {
  for (const [text, expected] of FNV_VECTORS) assert.equal(hash16(text), expected, text);
});

Deno.test("hash16 is always 16 lowercase hex digits, zero-padded", () => {
  for (const text of ["", "x", "srv", "C:\\Data", "\u{1f600}", "a".repeat(1000)]) {
    assert.match(hash16(text), /^[0-9a-f]{16}$/);
  }
});

Deno.test("canonicalForHash: one data dir written many ways gives one pipe name", () => {
  const spellings = [
    "C:\\Users\\Alice\\AppData\\Local\\srv",
    "c:\\users\\alice\\appdata\\local\\srv",
    "C:/Users/Alice/AppData/Local/srv",
    "C:\\Users\\Alice\\AppData\\Local\\srv\\",
    "C:\\Users\\Alice\\AppData\\Local\\.\\srv",
    "C:\\Users\\Alice\\AppData\\Local\\tmp\\..\\srv",
    "C:\\Users\\\\Alice\\AppData\\Local\\srv",
  ];
  for (const path of spellings) {
    assert.equal(canonicalForHash(path, "windows"), "c:\\users\\alice\\appdata\\local\\srv", path);
  }
  assert.equal(
    pipeNameForDataDir(spellings[0]),
    "\\\\.\\pipe\\srv-655e8c0e64fe8d45\\srv-command",
  );
  // A root keeps its separator.
  assert.equal(canonicalForHash("D:\\", "windows"), "d:\\");
  assert.equal(canonicalForHash("/", "linux"), "/");
  assert.equal(
    canonicalForHash("/Home/Alice/.local/state/srv/", "linux"),
    "/home/alice/.local/state/srv",
  );
});

Deno.test("defaultDataDir on Linux: XDG_STATE_HOME, else ~/.local/state", () => {
  assert.equal(
    defaultDataDir({ XDG_STATE_HOME: "/var/state", HOME: "/home/alice" }, "linux"),
    "/var/state/srv",
  );
  assert.equal(defaultDataDir({ HOME: "/home/alice" }, "linux"), "/home/alice/.local/state/srv");
  // The XDG spec: a relative XDG_STATE_HOME is invalid and ignored; so is an empty one.
  assert.equal(
    defaultDataDir({ XDG_STATE_HOME: "state", HOME: "/home/alice" }, "linux"),
    "/home/alice/.local/state/srv",
  );
  assert.equal(
    defaultDataDir({ XDG_STATE_HOME: "", HOME: "/home/alice" }, "linux"),
    "/home/alice/.local/state/srv",
  );
  assert.equal(defaultDataDir({ HOME: "/home/bob" }, "freebsd"), "/home/bob/.local/state/srv");
  assert.equal(defaultDataDir({}, "linux"), null);
});

Deno.test("defaultDataDir on macOS: ~/Library/Application Support, XDG ignored", () => {
  assert.equal(
    defaultDataDir({ HOME: "/Users/alice", XDG_STATE_HOME: "/x" }, "darwin"),
    "/Users/alice/Library/Application Support/srv",
  );
  assert.equal(defaultDataDir({}, "darwin"), null);
});

Deno.test("defaultDataDir on Windows: %LOCALAPPDATA%, else %USERPROFILE%\\AppData\\Local", () => {
  assert.equal(
    defaultDataDir(
      { LOCALAPPDATA: "C:\\Users\\Alice\\AppData\\Local", HOME: "/ignored" },
      "windows",
    ),
    "C:\\Users\\Alice\\AppData\\Local\\srv",
  );
  assert.equal(
    defaultDataDir({ USERPROFILE: "C:\\Users\\Alice" }, "windows"),
    "C:\\Users\\Alice\\AppData\\Local\\srv",
  );
  assert.equal(defaultDataDir({ HOME: "/home/alice" }, "windows"), null);
});

Deno.test("resolveEndpoint: --socket, then SRV_SOCKET, then AGENTMUX_SRV_PIPE_PATH, then default", () => {
  const base = { os: "linux" as const, uid: 1000, dataDir: "/d" };
  const env = {
    SRV_SOCKET: "/env/srv.sock",
    AGENTMUX_SRV_PIPE_PATH: "/agentmux/pipe",
    XDG_RUNTIME_DIR: "/run/user/1000",
  };
  assert.deepEqual(resolveEndpoint({ ...base, env, flag: "/flag.sock" }), {
    path: "/flag.sock",
    source: "flag",
  });
  assert.deepEqual(resolveEndpoint({ ...base, env }), {
    path: "/env/srv.sock",
    source: "SRV_SOCKET",
  });
  const { SRV_SOCKET: _, ...noSrvSocket } = env;
  assert.deepEqual(resolveEndpoint({ ...base, env: noSrvSocket }), {
    path: "/agentmux/pipe",
    source: "AGENTMUX_SRV_PIPE_PATH",
  });
  assert.deepEqual(resolveEndpoint({ ...base, env: { XDG_RUNTIME_DIR: "/run/user/1000" } }), {
    path: "/run/user/1000/srv/srv.sock",
    source: "default",
  });
  // Empty values count as unset, as a shell's `SRV_SOCKET= srv serve` means.
  assert.equal(
    resolveEndpoint({ ...base, flag: "", env: { SRV_SOCKET: "", XDG_RUNTIME_DIR: "/r" } }).path,
    "/r/srv/srv.sock",
  );
});

Deno.test("defaultEndpoint per platform", () => {
  assert.equal(
    defaultEndpoint({
      env: { XDG_RUNTIME_DIR: "/run/user/1000/" },
      os: "linux",
      uid: 1000,
      dataDir: "",
    }),
    "/run/user/1000/srv/srv.sock",
  );
  assert.equal(
    defaultEndpoint({ env: { TMPDIR: "/var/folders/x/T/" }, os: "darwin", uid: 501, dataDir: "" }),
    "/var/folders/x/T/srv-501/srv.sock",
  );
  assert.equal(
    defaultEndpoint({ env: {}, os: "linux", uid: 1000, dataDir: "" }),
    "/tmp/srv-1000/srv.sock",
  );
  // Windows: the pipe name comes from the data dir; XDG and TMPDIR play no part.
  assert.equal(
    defaultEndpoint({
      env: { XDG_RUNTIME_DIR: "/run/user/1000", TMPDIR: "C:\\Temp" },
      os: "windows",
      uid: null,
      dataDir: "C:\\Users\\Alice\\AppData\\Local\\srv",
    }),
    "\\\\.\\pipe\\srv-655e8c0e64fe8d45\\srv-command",
  );
});

Deno.test("the Windows default chain: LOCALAPPDATA → data dir → pipe name", () => {
  const dataDir = defaultDataDir({ LOCALAPPDATA: "C:\\Users\\Alice\\AppData\\Local" }, "windows");
  assert.ok(dataDir !== null);
  assert.deepEqual(resolveEndpoint({ env: {}, os: "windows", uid: null, dataDir }), {
    path: "\\\\.\\pipe\\srv-655e8c0e64fe8d45\\srv-command",
    source: "default",
  });
  // The reference host's variable still wins on Windows.
  assert.equal(
    resolveEndpoint({
      env: { AGENTMUX_SRV_PIPE_PATH: "\\\\.\\pipe\\agentmux-srv" },
      os: "windows",
      uid: null,
      dataDir,
    }).path,
    "\\\\.\\pipe\\agentmux-srv",
  );
});

Deno.test("isPipeName accepts only \\\\.\\pipe\\ and \\\\?\\pipe\\ names", () => {
  for (const yes of ["\\\\.\\pipe\\srv", "\\\\?\\pipe\\srv-x\\srv-command", "\\\\.\\PIPE\\Srv"]) {
    assert.ok(isPipeName(yes), yes);
  }
  for (
    const no of [
      "/tmp/srv.sock",
      "C:\\pipe\\srv",
      "\\\\.\\pipe\\",
      "\\\\server\\pipe\\srv",
      "//./pipe/srv",
      "srv",
    ]
  ) {
    assert.ok(!isPipeName(no), no);
  }
});
