// Line splitter unit tests: PROTOCOL.md §1 framing and line cap.
import assert from "node:assert/strict";
import { LineSplitter } from "../mod.ts";

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
