// A Unix socket client through libc (Linux), for the one thing Deno's API
// cannot do: shut down only the read side. srv's writes to it then fail
// with EPIPE while it can still send, which is the order of events a client
// that writes a last command and exits produces by chance. Linux only
// (glibc's libc.so.6 and sockaddr_un layout).

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SHUT_RD = 0;
const SOCKADDR_UN_SIZE = 110;

/** A blocking libc socket; small writes to a local socket return at once. */
export class HalfClosedClient {
  #lib = Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    shutdown: { parameters: ["i32", "i32"], result: "i32" },
    write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
  });
  #fd: number;

  constructor(path: string) {
    const encoded = new TextEncoder().encode(path);
    if (encoded.length >= SOCKADDR_UN_SIZE - 2) throw new Error(`socket path too long: ${path}`);
    this.#fd = this.#lib.symbols.socket(AF_UNIX, SOCK_STREAM, 0);
    if (this.#fd < 0) throw new Error("socket() failed");
    const addr = new Uint8Array(SOCKADDR_UN_SIZE);
    new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
    addr.set(encoded, 2);
    if (this.#lib.symbols.connect(this.#fd, addr, SOCKADDR_UN_SIZE) !== 0) {
      this.close();
      throw new Error(`connect(${path}) failed`);
    }
  }

  /** Stops receiving: from now on the server's writes fail with EPIPE. */
  shutdownRead(): void {
    if (this.#lib.symbols.shutdown(this.#fd, SHUT_RD) !== 0) throw new Error("shutdown() failed");
  }

  write(text: string): void {
    const bytes = new TextEncoder().encode(text);
    if (this.#lib.symbols.write(this.#fd, bytes, BigInt(bytes.length)) !== BigInt(bytes.length)) {
      throw new Error("short write");
    }
  }

  close(): void {
    if (this.#fd >= 0) this.#lib.symbols.close(this.#fd);
    this.#fd = -1;
    this.#lib.close();
  }
}
