import { describe, expect, it } from "vitest";
import { decode, encode } from "../src/msgpack";

// A server frame as msgpack-python packs it (packb(..., use_bin_type=True)):
// ["1", None, "room:a", "msg", {"n": -129, "f": 1.5, "big": 2**40, "neg": -2**40,
//  "s": "é" * 20, "b": b"\x00\x01", "l": list(range(16))}, [7, "e1"]]
const FROM_PYTHON = [
  150, 161, 49, 192, 166, 114, 111, 111, 109, 58, 97, 163, 109, 115, 103, 135, 161, 110, 209, 255,
  127, 161, 102, 203, 63, 248, 0, 0, 0, 0, 0, 0, 163, 98, 105, 103, 207, 0, 0, 1, 0, 0, 0, 0, 0,
  163, 110, 101, 103, 211, 255, 255, 255, 0, 0, 0, 0, 0, 161, 115, 217, 40,
  ...Array(20).fill([195, 169]).flat(),
  161, 98, 196, 2, 0, 1, 161, 108, 220, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  146, 7, 162, 101, 49,
];

describe("msgpack", () => {
  it("reads what msgpack-python writes, and writes it back byte for byte", () => {
    const value = decode(Uint8Array.from(FROM_PYTHON));
    expect(value).toEqual([
      "1",
      null,
      "room:a",
      "msg",
      {
        n: -129,
        f: 1.5,
        big: 2 ** 40,
        neg: -(2 ** 40),
        s: "é".repeat(20),
        b: Uint8Array.from([0, 1]),
        l: [...Array(16).keys()],
      },
      [7, "e1"],
    ]);
    expect([...encode(value)]).toEqual(FROM_PYTHON);
  });

  it("round-trips every size class of every type it supports", () => {
    const ints = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const negatives = [-1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1];
    const strings = [0, 1, 31, 32, 255, 256, 65535, 65536].map((n) => "x".repeat(n));
    const values = [
      null,
      true,
      false,
      ...ints,
      ...negatives,
      Number.MIN_SAFE_INTEGER,
      1.5,
      -0.25,
      1e300,
      ...strings,
      "日本語 😀",
      [],
      Array(15).fill(1),
      Array(16).fill(1),
      Array(65536).fill(0),
      Object.fromEntries([...Array(15).keys()].map((k) => [`k${k}`, k])),
      Object.fromEntries([...Array(16).keys()].map((k) => [`k${k}`, k])),
      Object.fromEntries([...Array(65536).keys()].map((k) => [`k${k}`, k])),
      Uint8Array.from(Array(256).fill(7)),
      { nested: [{ a: [1, { b: null }] }] },
    ];
    for (const value of values) expect(decode(encode(value))).toEqual(value);
    expect([...encode(-1)]).toEqual([0xff]);
    expect([...encode(200)]).toEqual([0xcc, 200]);
    expect([...encode({ a: 1, skipped: undefined })]).toEqual([0x81, 0xa1, 0x61, 1]);
  });

  it("reads the other encodings a server may choose", () => {
    expect(decode(Uint8Array.from([0xca, 0x3f, 0xc0, 0, 0]))).toBe(1.5); // float32
    expect(decode(Uint8Array.from([0xd0, 0x80]))).toBe(-128);
    expect(decode(Uint8Array.from([0xcd, 0, 5]))).toBe(5); // not the smallest: still fine
    expect(decode(Uint8Array.from([0xdd, 0, 0, 0, 1, 0xc3]))).toEqual([true]);
    expect(decode(Uint8Array.from([0xde, 0, 1, 0xa1, 0x61, 0xc2]))).toEqual({ a: false });
  });

  it("refuses what it cannot represent or what is cut short", () => {
    expect(() => decode(Uint8Array.from([0xd4, 1, 2]))).toThrow(TypeError); // an extension
    expect(() => decode(Uint8Array.from([0x81, 1, 2]))).toThrow(TypeError); // an integer key
    expect(() => decode(Uint8Array.from([0x92, 1]))).toThrow(RangeError); // truncated
    expect(() => decode(Uint8Array.from([1, 2]))).toThrow(RangeError); // trailing bytes
    expect(() => decode(Uint8Array.from([0xdd, 255, 255, 255, 255]))).toThrow(RangeError);
    expect(() => encode(() => 1)).toThrow(TypeError);
  });
  it("encodes what JSON.stringify would: NaN and Infinity as null, a Date as its toJSON", () => {
    const date = new Date(Date.UTC(2026, 0, 2));
    const value = { nan: NaN, inf: -Infinity, when: date, list: [Infinity] };
    expect(decode(encode(value))).toEqual(JSON.parse(JSON.stringify(value)));
    expect(decode(encode(value))).toEqual({ nan: null, inf: null, when: "2026-01-02T00:00:00.000Z", list: [null] });
  });
});
