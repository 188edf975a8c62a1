// Line splitter unit tests: docs/PROTOCOL.md §1 framing and line cap.
import assert from "node:assert/strict";
import { LineSplitter } from "../../srv/core/line_splitter.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function feed(split: LineSplitter, ...chunks: string[]): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  let ok = true;
  for (const c of chunks) {
    ok = split.push(enc.encode(c), (l) => void lines.push(dec.decode(l))) && ok;
  }
  return { lines, ok };
}

Deno.test("splits on \\n, strips a \\r before it, joins lines across chunks", () => {
  const split = new LineSplitter(100);
  const { lines } = feed(split, "a\r\nb", "c\n\nd", "\r", "\n");
  assert.deepEqual(lines, ["a", "bc", "", "d"]);
  assert.equal(split.pendingBytes, 0);
});

Deno.test("a byte-by-byte stream gives the same lines", () => {
  const split = new LineSplitter(100);
  const text = '{"cmd":"ping","nonce":1}\n{"cmd":"goodbye"}\r\n';
  const { lines } = feed(split, ...text.split(""));
  assert.deepEqual(lines, ['{"cmd":"ping","nonce":1}', '{"cmd":"goodbye"}']);
});

Deno.test("a line of exactly the cap passes; one byte more overflows", () => {
  const ok = new LineSplitter(8);
  assert.deepEqual(feed(ok, "12345678\n"), { lines: ["12345678"], ok: true });
  const crlf = new LineSplitter(8);
  assert.deepEqual(feed(crlf, "12345678\r\n"), { lines: ["12345678"], ok: true });
  const over = new LineSplitter(8);
  assert.deepEqual(feed(over, "ok\n123456789\nlater\n"), { lines: ["ok"], ok: false });
  assert.equal(over.overflowed, true);
});

Deno.test("a flood without newlines overflows without buffering past the cap", () => {
  const split = new LineSplitter(1024);
  let ok = true;
  for (let i = 0; i < 100 && ok; i++) ok = split.push(new Uint8Array(512).fill(0x61), () => {});
  assert.equal(ok, false);
  assert.equal(split.pendingBytes, 0);
});

Deno.test("finish delivers a last line without \\n; nothing when there is none", () => {
  const split = new LineSplitter(100);
  const lines: string[] = [];
  split.push(enc.encode("a\nlast"), (l) => void lines.push(dec.decode(l)));
  split.finish((l) => void lines.push(dec.decode(l)));
  assert.deepEqual(lines, ["a", "last"]);
  split.finish(() => assert.fail("no second delivery"));
});

Deno.test("returning false from the callback stops the chunk", () => {
  const split = new LineSplitter(100);
  const lines: string[] = [];
  split.push(enc.encode("a\nb\nc\n"), (l) => {
    lines.push(dec.decode(l));
    return lines.length < 2;
  });
  assert.deepEqual(lines, ["a", "b"]);
});

Deno.test("pushText delivers exactly what push delivers, for random streams and random chunking", () => {
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const pieces = [
    enc.encode('{"cmd":"ping","nonce":1}'),
    enc.encode("héllo ✓"),
    new Uint8Array([0xff, 0xfe]), // invalid UTF-8
    new Uint8Array([0xe2, 0x9c]), // truncated multi-byte sequence
    enc.encode("\r"),
    enc.encode("\n"),
    enc.encode("\r\n"),
    enc.encode(" "),
    new Uint8Array(30).fill(0x78), // pushes lines past the cap of 40
  ];
  const canonical = (l: string | Uint8Array) => typeof l === "string" ? enc.encode(l) : l.slice();
  for (let trial = 0; trial < 400; trial++) {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) parts.push(pieces[Math.floor(rnd() * pieces.length)]);
    const stream = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((off, p) => (stream.set(p, off), off + p.length), 0);
    const cuts: number[] = [];
    for (let at = 0; at < stream.length;) {
      at += 1 + Math.floor(rnd() * 25);
      cuts.push(Math.min(at, stream.length));
    }
    const run = (text: boolean) => {
      const split = new LineSplitter(40);
      const lines: Uint8Array[] = [];
      let ok = true;
      let from = 0;
      for (const to of cuts) {
        if (!ok) break;
        const chunk = stream.slice(from, to);
        from = to;
        ok = text
          ? split.pushText(chunk, (l) => void lines.push(canonical(l)))
          : split.push(chunk, (l) => void lines.push(canonical(l)));
      }
      return { ok, lines: lines.map((l) => [...l].join(",")), pending: split.pendingBytes };
    };
    assert.deepEqual(run(true), run(false), `trial ${trial}`);
    // Stopping anywhere (a callback's false) and resuming later delivers the
    // same lines: the rest is held, even when the caller reuses its buffer
    // and pushes more chunks before it resumes.
    const paused = () => {
      const split = new LineSplitter(40);
      const lines: Uint8Array[] = [];
      const onLine = (l: string | Uint8Array) => {
        lines.push(canonical(l));
        return rnd() > 0.3;
      };
      const buffer = new Uint8Array(64);
      let ok = true;
      let from = 0;
      for (const to of cuts) {
        if (!ok) break;
        const chunk = buffer.subarray(0, to - from);
        chunk.set(stream.subarray(from, to));
        from = to;
        ok = split.pushText(chunk, onLine);
        buffer.fill(0x0a); // the transport reuses its buffer
        while (ok && split.holding && rnd() < 0.7) ok = split.resume(onLine);
      }
      while (ok && split.holding) ok = split.resume(onLine);
      return { ok, lines: lines.map((l) => [...l].join(",")), pending: split.pendingBytes };
    };
    assert.deepEqual(paused(), run(false), `trial ${trial}, paused`);
  }
});

Deno.test("pushText hands valid lines over as strings and invalid ones as bytes", () => {
  const split = new LineSplitter(100);
  const lines: (string | Uint8Array)[] = [];
  split.pushText(enc.encode("ok ✓\r\nnext\n"), (l) => void lines.push(l));
  assert.deepEqual(lines, ["ok ✓", "next"]);
  const mixed: (string | Uint8Array)[] = [];
  split.pushText(new Uint8Array([0x61, 0x0a, 0xff, 0x0a]), (l) => void mixed.push(l));
  assert.deepEqual(mixed, [new Uint8Array([0x61]), new Uint8Array([0xff])]);
});
