// What a test can see of a running srv from outside: resident memory and
// open descriptors from /proc (Linux), and a bounded wait on a condition.

const encoder = new TextEncoder();

/**
 * For `Deno.test(name, { ignore: linuxOnly(reason) }, fn)`: true (skip) off
 * Linux, and then says so on stderr, so a skip is never silent. For tests
 * that read /proc, call Linux's libc or use prlimit.
 */
export function linuxOnly(reason: string): boolean {
  if (Deno.build.os === "linux") return false;
  Deno.stderr.writeSync(encoder.encode(`skipped off Linux: ${reason}\n`));
  return true;
}

/** Resident set size of `pid` in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Samples `pid`'s RSS every 20 ms while `work` runs; returns the peak. */
export async function peakRss(pid: number, work: () => Promise<unknown>): Promise<number> {
  let peak = rssBytes(pid);
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, rssBytes(pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await sampler;
  }
  return Math.max(peak, rssBytes(pid));
}

/** Open file descriptors of `pid` (entries of /proc/<pid>/fd). */
export function fdCount(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/**
 * Client connections `pid` holds on the listening socket at `path`: the
 * accepted sockets, which /proc/net/unix lists under the listener's path.
 * Counting all socket descriptors would not do: the runtime opens socket
 * pairs of its own, some of them lazily.
 */
export function connectionSocketCount(pid: number, path: string): number {
  const accepted = new Set<string>();
  for (const line of Deno.readTextFileSync("/proc/net/unix").split("\n").slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path
    const fields = line.trim().split(/\s+/);
    const LISTENING = "00010000";
    if (fields.length >= 8 && fields.slice(7).join(" ") === path && fields[3] !== LISTENING) {
      accepted.add(fields[6]);
    }
  }
  let n = 0;
  for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      const target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && accepted.has(inode)) n++;
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return n;
}

/**
 * Polls `check` until it returns true. The timeout only turns a hang into a
 * failure; the test proceeds as soon as the fact holds.
 */
export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** MiB, for messages. */
export function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
