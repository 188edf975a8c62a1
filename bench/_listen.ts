/**
 * What the bench's own baseline servers (echo, the floor) share: listen on
 * a Unix socket, say they are ready the way `_servers.ts` waits for, hand
 * every connection over, and exit cleanly on SIGTERM or SIGINT.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Serves `path` until SIGTERM or SIGINT: prints `<name> ready socket=<path>
 * pid=<pid>` once it accepts connections, calls `handle` for each (without
 * waiting for it) and closes the connection once `handle` settles (an
 * error is a client that went away), then removes the socket file and
 * exits 0.
 *
 * @example
 * ```ts ignore
 * import { serveUnix } from "./_listen.ts";
 * await serveUnix("echo", "/tmp/echo.sock", async (conn) => {
 *   const buf = new Uint8Array(1024);
 *   for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
 *     await conn.write(buf.subarray(0, n));
 *   }
 * });
 * ```
 */
export async function serveUnix(
  name: string,
  path: string,
  handle: (conn: Deno.Conn) => Promise<void>,
): Promise<never> {
  await Deno.remove(path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path });
  const stop = () => {
    try {
      listener.close();
    } catch {
      // Already closed.
    }
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  Deno.stdout.writeSync(encoder.encode(`${name} ready socket=${path} pid=${Deno.pid}\n`));
  try {
    for await (const conn of listener) {
      handle(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      });
    }
  } catch {
    // Listener closed.
  }
  await Deno.remove(path).catch(() => {});
  Deno.exit(0);
}
