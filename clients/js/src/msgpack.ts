// The msgpack subset the protocol's binary variant needs (docs/protocol.md): nil, booleans,
// integers, floats, strings, binaries, arrays and maps with string keys. Encodes what
// JSON.stringify would (undefined members are skipped); decodes to plain values, binaries as
// Uint8Array. Anything else (extension types, non-string map keys) is an error.

const utf8 = new TextEncoder();
const text = new TextDecoder();

export function encode(value: unknown): Uint8Array {
  const bytes: number[] = [];
  const push = (...b: number[]) => bytes.push(...b);
  const big = (n: number, size: number) => {
    for (let i = size - 1; i >= 0; i--) push(Math.floor(n / 2 ** (8 * i)) & 255);
  };
  const head = (n: number, fix: number, fixMax: number, codes: number[]) => {
    if (n <= fixMax && fix >= 0) push(fix | n);
    else if (n < 256 && codes[0] !== undefined) push(codes[0], n);
    else if (n < 65536) push(codes[1] as number, n >> 8, n & 255);
    else (push(codes[2] as number), big(n, 4));
  };
  const walk = (v: unknown): void => {
    // As JSON.stringify: NaN and Infinity are null (the server refuses them, 4400), a Date
    // (anything with toJSON) is what its toJSON returns.
    if (typeof v === "number" && !Number.isFinite(v)) v = null;
    else if (typeof v === "object" && v !== null && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      v = (v as { toJSON(): unknown }).toJSON();
    }
    if (v === null || v === undefined) push(0xc0);
    else if (v === false || v === true) push(v ? 0xc3 : 0xc2);
    else if (typeof v === "number") {
      if (Number.isSafeInteger(v)) {
        // The smallest encoding, as msgpack-python writes it.
        if (v >= 0) {
          if (v < 128) push(v);
          else if (v < 256) push(0xcc, v);
          else if (v < 65536) (push(0xcd), big(v, 2));
          else if (v < 2 ** 32) (push(0xce), big(v, 4));
          else (push(0xcf), big(v, 8));
        } else if (v >= -32) push(v & 255);
        else if (v >= -128) push(0xd0, v & 255);
        else if (v >= -32768) (push(0xd1), big(v & 0xffff, 2));
        else if (v >= -(2 ** 31)) (push(0xd2), big(v >>> 0, 4));
        else {
          const high = Math.floor(v / 2 ** 32); // two's complement, in two exact halves
          push(0xd3);
          big(high >>> 0, 4);
          big(v - high * 2 ** 32, 4);
        }
      } else {
        const view = new DataView(new ArrayBuffer(8));
        view.setFloat64(0, v);
        push(0xcb, ...new Uint8Array(view.buffer));
      }
    } else if (typeof v === "string") {
      const b = utf8.encode(v);
      head(b.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
      for (const x of b) push(x);
    } else if (v instanceof Uint8Array) {
      head(v.length, -1, -1, [0xc4, 0xc5, 0xc6]);
      for (const x of v) push(x);
    } else if (Array.isArray(v)) {
      head(v.length, 0x90, 15, [undefined as never, 0xdc, 0xdd]);
      v.forEach(walk);
    } else if (typeof v === "object") {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      head(entries.length, 0x80, 15, [undefined as never, 0xde, 0xdf]);
      for (const [k, x] of entries) (walk(k), walk(x));
    } else throw new TypeError(`msgpack cannot encode a ${typeof v}`);
  };
  walk(value);
  return Uint8Array.from(bytes);
}

export function decode(data: ArrayBuffer | Uint8Array): unknown {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const take = (n: number) => {
    if (at + n > bytes.length) throw new RangeError("truncated msgpack");
    at += n;
    return at - n;
  };
  const uint = (size: number): number => {
    const i = take(size);
    let n = 0;
    for (let k = 0; k < size; k++) n = n * 256 + (bytes[i + k] as number);
    return n;
  };
  const str = (n: number) => text.decode(bytes.subarray(take(n), at));
  const list = (n: number): unknown[] => Array.from({ length: n }, read);
  const map = (n: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let k = 0; k < n; k++) {
      const key = read();
      if (typeof key !== "string") throw new TypeError("msgpack map key is not a string");
      out[key] = read();
    }
    return out;
  };
  function read(): unknown {
    const b = bytes[take(1)] as number;
    if (b < 0x80) return b;
    if (b < 0x90) return map(b & 15);
    if (b < 0xa0) return list(b & 15);
    if (b < 0xc0) return str(b & 31);
    if (b >= 0xe0) return b - 256;
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: case 0xc5: case 0xc6: {
        const n = uint(1 << (b - 0xc4));
        return bytes.slice(take(n), at);
      }
      case 0xca: return view.getFloat32(take(4));
      case 0xcb: return view.getFloat64(take(8));
      case 0xcc: case 0xcd: case 0xce: case 0xcf: return uint(1 << (b - 0xcc));
      case 0xd0: return view.getInt8(take(1));
      case 0xd1: return view.getInt16(take(2));
      case 0xd2: return view.getInt32(take(4));
      case 0xd3: return Number(view.getBigInt64(take(8)));
      case 0xd9: case 0xda: case 0xdb: return str(uint(1 << (b - 0xd9)));
      case 0xdc: case 0xdd: return list(uint(2 << (b - 0xdc)));
      case 0xde: case 0xdf: return map(uint(2 << (b - 0xde)));
    }
    throw new TypeError(`msgpack type 0x${b.toString(16)} is not supported`);
  }
  const value = read();
  if (at !== bytes.length) throw new RangeError("trailing bytes after msgpack value");
  return value;
}
