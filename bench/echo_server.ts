/**
 * The baseline: a raw Deno Unix-socket echo server with srv's framing. It
 * splits input with srv's own `LineSplitter` and writes the complete lines of
 * each read chunk back in one write, so it is what the runtime can do for
 * newline-delimited messages with no parsing, state or fan-out. srv's
 * figures are quoted as ratios to this one.
 *
 * Usage: `deno run --allow-net --allow-read --allow-write bench/echo_server.ts --socket PATH`
 * prints `echo ready socket=<path> pid=<pid>` once it accepts connections.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serveUnix } from "./_listen.ts";
import { LineSplitter } from "@srv/srv/core";

const encoder = new TextEncoder();
const READ_BUFFER = 64 * 1024;

async function serveConnection(conn: Deno.Conn): Promise<void> {
  const splitter = new LineSplitter();
  const buf = new Uint8Array(READ_BUFFER);
  let out = new Uint8Array(READ_BUFFER);
  let used = 0;
  const onLine = (line: Uint8Array) => {
    const need = used + line.length + 1;
    if (need > out.length) {
      const grown = new Uint8Array(Math.max(need, out.length * 2));
      grown.set(out.subarray(0, used));
      out = grown;
    }
    out.set(line, used);
    used += line.length;
    out[used++] = 0x0a;
  };
  // A client that goes away rejects a read or write: serveUnix closes the connection.
  while (true) {
    const n = await conn.read(buf);
    if (n === null) break;
    used = 0;
    if (!splitter.push(buf.subarray(0, n), onLine)) break;
    let offset = 0;
    while (offset < used) offset += await conn.write(out.subarray(offset, used));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { socket: { type: "string" } },
    strict: true,
  });
  const path = values.socket;
  if (!path) {
    Deno.stderr.writeSync(encoder.encode("usage: echo_server.ts --socket PATH\n"));
    Deno.exit(2);
  }
  await serveUnix("echo", path, serveConnection);
}

if (import.meta.main) await main();
