// The node:net transport in process, through the Listener/Connection
// interface the server uses: a Unix socket path on Linux and macOS, a real
// named pipe on Windows (the same code either way).
import assert from "node:assert/strict";
import { type Connection, EndpointError, type Listener } from "../../srv/transport/transport.ts";
import {
  connectNamedPipe,
  isNamedPipeLive,
  listenNamedPipe,
  type NamedPipeConnection,
} from "../../srv/transport/node_net.ts";
import { MAX_READ_BUFFER } from "../../srv/transport/transport.ts";
import { LINE_TIMEOUT_MS, testEndpoint, unixOnly } from "../_harness.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A listener on a fresh endpoint, and its accepted connections in order. */
async function withListener(
  fn: (
    endpoint: string,
    accepted: () => Promise<NamedPipeConnection>,
    listener: Listener,
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "srv-pipe-test-" });
  const endpoint = testEndpoint(dir);
  const listener = await listenNamedPipe(endpoint);
  const iterator = listener[Symbol.asyncIterator]();
  const accepted = async () => {
    const next = await iterator.next();
    assert.ok(!next.done, "listener ended while a connection was expected");
    return next.value as NamedPipeConnection;
  };
  try {
    await fn(endpoint, accepted, listener);
  } finally {
    listener.close();
    await iterator.return?.();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Reads until `n` bytes arrived or the stream ends. */
async function readBytes(conn: Connection, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const chunk = await conn.read();
    if (chunk === null) break;
    out.set(chunk.subarray(0, n - got), got);
    got += chunk.length;
  }
  return out.subarray(0, got);
}

/** Resolves once `condition()` holds; fails the test after the line timeout instead of hanging. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + LINE_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

Deno.test("node:net transport: bytes both ways, end of stream after the peer closes", async () => {
  await withListener(async (endpoint, accepted) => {
    const client = await connectNamedPipe(endpoint);
    const server = await accepted();
    await client.write(encoder.encode("ping\n"));
    assert.equal(decoder.decode(await readBytes(server, 5)), "ping\n");
    await server.write(encoder.encode("pong\n"));
    assert.equal(decoder.decode(await readBytes(client, 5)), "pong\n");
    client.close();
    assert.equal(await server.read(), null, "end of stream once the client is gone");
    server.close();
  });
});

Deno.test("node:net transport: a flood is held back at the read limit and arrives intact", async () => {
  await withListener(async (endpoint, accepted) => {
    const client = await connectNamedPipe(endpoint);
    const server = await accepted();
    const flood = new Uint8Array(4 * 1024 * 1024);
    for (let i = 0; i < flood.length; i++) flood[i] = (i * 31 + (i >> 12)) & 0xff;
    const written = client.write(flood);
    // Nobody reads on the server side: it must stop taking bytes from the
    // kernel instead of buffering the whole flood.
    await until(() => server.isPaused, "the server side pauses");
    const held = server.unreadBytes;
    assert.ok(held >= MAX_READ_BUFFER, `paused at ${held} bytes`);
    assert.ok(held < 2 * MAX_READ_BUFFER, `held ${held} bytes, far below the 4 MiB sent`);
    // Reading resumes it; every byte arrives, in order.
    const received = await readBytes(server, flood.length);
    await written;
    assert.equal(received.length, flood.length);
    assert.ok(received.every((b, i) => b === flood[i]), "bytes arrive intact and in order");
    assert.ok(!server.isPaused);
    client.close();
    server.close();
  });
});

Deno.test("node:net transport: write rejects once the peer is gone; close is idempotent", async () => {
  await withListener(async (endpoint, accepted) => {
    const client = await connectNamedPipe(endpoint);
    const server = await accepted();
    client.close();
    client.close();
    assert.equal(await server.read(), null);
    await assert.rejects(server.write(encoder.encode("anyone there?\n")));
    server.close();
    server.close();
    assert.equal(await server.read(), null, "read after close is end of stream");
    await assert.rejects(server.write(encoder.encode("x")), "write after close rejects");
  });
});

Deno.test("node:net transport: closing the listener ends the accept loop, open connections stay", async () => {
  await withListener(async (endpoint, accepted, listener) => {
    const client = await connectNamedPipe(endpoint);
    const server = await accepted();
    const loopDone = (async () => {
      for await (const _ of listener) { /* nothing else connects */ }
    })();
    listener.close();
    listener.close();
    await loopDone;
    await client.write(encoder.encode("still here\n"));
    assert.equal(decoder.decode(await readBytes(server, 11)), "still here\n");
    client.close();
    server.close();
  });
});

Deno.test("node:net transport: a second listen on the same endpoint fails as in_use", async () => {
  // On Windows this is the FILE_FLAG_FIRST_PIPE_INSTANCE check Deno makes
  // when it creates the pipe; on Unix the socket file is taken.
  await withListener(async (endpoint) => {
    const error = await listenNamedPipe(endpoint).then(
      (second) => {
        second.close();
        return null;
      },
      (e) => e,
    );
    assert.ok(error instanceof EndpointError, `got ${error}`);
    assert.equal(error.code, "in_use");
    assert.ok(await isNamedPipeLive(endpoint), "the first listener still accepts");
  });
});

Deno.test("isNamedPipeLive is false where nothing listens", async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-pipe-test-" });
  try {
    assert.equal(await isNamedPipeLive(testEndpoint(dir)), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("node:net transport on Unix: a private socket is 0600 even under umask 000", {
  ignore: unixOnly("socket file modes: a Windows pipe has no file mode"),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "srv-pipe-test-" });
  const previous = Deno.umask(0);
  try {
    const listener = await listenNamedPipe(`${dir}/srv.sock`, { privateSocket: true });
    assert.equal(Deno.umask(0), 0, "the process umask is restored after listening");
    assert.equal((await Deno.lstat(`${dir}/srv.sock`)).mode! & 0o777, 0o600);
    listener.close();
  } finally {
    Deno.umask(previous);
    await Deno.remove(dir, { recursive: true });
  }
});
