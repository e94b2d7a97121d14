import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoff, type CloseInfo, Socket } from "../src";
import { FakeWebSocket, openSocket, socketFor } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const closes = (socket: ReturnType<typeof socketFor>): CloseInfo[] => {
  const seen: CloseInfo[] = [];
  socket.on("close", (info) => seen.push(info));
  return seen;
};

describe("backoff", () => {
  it("draws from [0, min(cap, base * 2^attempt))", () => {
    const top = () => 0.999999;
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoff(n, 100, 3000, top))).toEqual([
      99, 199, 399, 799, 1599, 2999, 2999,
    ]);
    expect(backoff(3, 100, 3000, () => 0)).toBe(0);
    expect(backoff(1000, 100, 3000, top)).toBe(2999); // no overflow to Infinity/NaN
  });
});

describe("connecting", () => {
  it("offers the v1 subprotocol and puts params in the query string", () => {
    const socket = socketFor({ params: { token: "a b" } });
    socket.connect();
    expect(FakeWebSocket.last.protocols).toEqual(["channelworks.v1"]);
    expect(FakeWebSocket.last.url).toBe("ws://example.test/topics/?token=a+b");
  });

  it("resolves a relative URL against the page, https to wss", () => {
    vi.stubGlobal("location", { href: "https://site.test/rooms/1/" });
    new Socket("/ws/topics/", { WebSocket: FakeWebSocket }).connect();
    expect(FakeWebSocket.last.url).toBe("wss://site.test/ws/topics/");
  });

  it("moves through its states and reports them", () => {
    const socket = socketFor();
    const states: string[] = [];
    socket.on("state", (state) => states.push(state));
    socket.connect();
    FakeWebSocket.last.open();
    FakeWebSocket.last.serverClose(1001, "restart");
    const seen = closes(socket);
    socket.disconnect();
    socket.disconnect();
    expect(states).toEqual(["connecting", "open", "waiting", "closed"]);
    expect(seen).toEqual([{ code: 1000, reason: "", reconnectIn: null }]);
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.all).toHaveLength(1); // the pending reconnect was cancelled
  });
});

describe("reconnecting", () => {
  it("waits a full-jitter backoff that doubles per failed attempt, up to the cap", () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const socket = socketFor({ backoffBase: 100, backoffMax: 1000 });
    const seen = closes(socket);
    socket.connect();
    for (let attempt = 0; attempt < 6; attempt++) {
      const ws = FakeWebSocket.last;
      ws.serverClose(1006); // the handshake failed
      const delay = seen.at(-1)?.reconnectIn ?? -1;
      vi.advanceTimersByTime(delay - 1);
      expect(FakeWebSocket.last).toBe(ws); // not yet
      vi.advanceTimersByTime(1);
      expect(FakeWebSocket.last).not.toBe(ws);
    }
    expect(seen.map((c) => c.reconnectIn)).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it("resets the backoff after a connection that stayed open, not after a short one", () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const socket = socketFor({ backoffBase: 100, backoffMax: 10_000, stableAfter: 5000 });
    const seen = closes(socket);
    socket.connect();
    for (let i = 0; i < 3; i++) {
      FakeWebSocket.last.serverClose(1006);
      vi.advanceTimersByTime(seen.at(-1)?.reconnectIn ?? 0);
    }
    FakeWebSocket.last.open();
    vi.advanceTimersByTime(4999);
    FakeWebSocket.last.serverClose(1011); // open 4.999 s: not stable
    expect(seen.at(-1)?.reconnectIn).toBe(400);
    vi.advanceTimersByTime(400);
    FakeWebSocket.last.open();
    vi.advanceTimersByTime(5000);
    FakeWebSocket.last.serverClose(1001);
    expect(seen.at(-1)?.reconnectIn).toBe(50);
  });

  it("never resets the backoff after a protocol error (4400)", () => {
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    const socket = socketFor({ backoffBase: 100, stableAfter: 10, heartbeatInterval: 1e9 });
    const seen = closes(socket);
    socket.connect();
    for (const _ of [1, 2, 3]) {
      FakeWebSocket.last.open();
      vi.advanceTimersByTime(1000);
      FakeWebSocket.last.serverClose(4400, "bad frame");
      vi.advanceTimersByTime(seen.at(-1)?.reconnectIn ?? 0);
    }
    expect(seen.map((c) => c.reconnectIn)).toEqual([50, 100, 200]);
  });

  it("retries at once when the network comes back or the page becomes visible", () => {
    const target = new EventTarget();
    const doc = Object.assign(new EventTarget(), { visibilityState: "hidden" });
    vi.stubGlobal("addEventListener", target.addEventListener.bind(target));
    vi.stubGlobal("removeEventListener", target.removeEventListener.bind(target));
    vi.stubGlobal("document", doc);
    vi.spyOn(Math, "random").mockReturnValue(0.99);
    const socket = socketFor({ backoffBase: 60_000, backoffMax: 60_000 });
    socket.connect();
    FakeWebSocket.last.open().serverClose(1006);
    expect(socket.state).toBe("waiting");

    doc.dispatchEvent(new Event("visibilitychange")); // still hidden: keeps waiting
    expect(FakeWebSocket.all).toHaveLength(1);
    doc.visibilityState = "visible";
    doc.dispatchEvent(new Event("visibilitychange"));
    expect(FakeWebSocket.all).toHaveLength(2);
    expect(socket.state).toBe("connecting");

    FakeWebSocket.last.serverClose(1006);
    doc.visibilityState = "hidden"; // the network coming back counts, hidden or not
    target.dispatchEvent(new Event("online"));
    expect(FakeWebSocket.all).toHaveLength(3);

    socket.disconnect(); // and no more after a disconnect
    target.dispatchEvent(new Event("online"));
    expect(FakeWebSocket.all).toHaveLength(3);
  });

  it.each([1000, 4401, 4403])("stops on close code %i, and connect() starts again", (code) => {
    const socket = socketFor();
    const seen = closes(socket);
    socket.connect();
    FakeWebSocket.last.open().serverClose(code, "session ended");
    expect(socket.state).toBe("stopped");
    expect(seen).toEqual([{ code, reason: "session ended", reconnectIn: null }]);
    vi.advanceTimersByTime(10 * 60_000);
    expect(FakeWebSocket.all).toHaveLength(1);
    socket.connect();
    expect(FakeWebSocket.all).toHaveLength(2);
  });

  it.each([1001, 1006, 1008, 1011, 1013, 4408])("reconnects after close code %i", (code) => {
    const socket = socketFor();
    const seen = closes(socket);
    socket.connect();
    FakeWebSocket.last.open().serverClose(code);
    expect(socket.state).toBe("waiting");
    vi.advanceTimersByTime(seen[0]?.reconnectIn ?? NaN);
    expect(FakeWebSocket.all).toHaveLength(2);
  });

  it("gives up on a handshake that hangs and tries again", () => {
    const socket = socketFor({ timeout: 3000 });
    const seen = closes(socket);
    socket.connect();
    const hung = FakeWebSocket.last;
    vi.advanceTimersByTime(3000);
    expect(hung.closedWith).not.toBeNull();
    expect(seen.at(-1)?.reason).toBe("open timeout");
    vi.advanceTimersByTime(seen.at(-1)?.reconnectIn ?? NaN);
    expect(FakeWebSocket.all).toHaveLength(2);
    hung.open(); // too late: ignored
    expect(socket.state).not.toBe("open");
  });
});

describe("heartbeats", () => {
  it("sends one per interval on topic $ while replies come back", () => {
    const [socket, ws] = openSocket({ heartbeatInterval: 1000 });
    for (let i = 1; i <= 3; i++) {
      vi.advanceTimersByTime(1000);
      const beat = ws.lastFrame("heartbeat", "$");
      expect(ws.frames("heartbeat")).toHaveLength(i);
      expect(beat[0]).toBeNull();
      ws.reply(beat, "ok");
    }
    expect(socket.state).toBe("open");
  });

  it("drops the connection and reconnects when a reply does not come within the interval", () => {
    const [socket, ws] = openSocket({ heartbeatInterval: 1000 });
    const seen = closes(socket);
    vi.advanceTimersByTime(1000);
    ws.deliver([null, "999", "$", "reply", { status: "ok", response: {} }]); // not its ref
    vi.advanceTimersByTime(1000);
    expect(ws.closedWith).toEqual({ code: 1000, reason: "heartbeat timeout" });
    expect(socket.state).toBe("waiting");
    expect(seen).toEqual([{ code: 4408, reason: "heartbeat timeout", reconnectIn: expect.any(Number) }]);
    ws.serverClose(1006); // the late close of the dropped socket changes nothing
    expect(seen).toHaveLength(1);
    vi.advanceTimersByTime(seen[0]?.reconnectIn ?? NaN);
    expect(FakeWebSocket.all).toHaveLength(2);
  });
});

describe("msgpack", () => {
  it("offers msgpack then JSON, and speaks binary frames when the server picks msgpack", async () => {
    const socket = socketFor({ format: "msgpack", heartbeatInterval: 1000 });
    socket.connect();
    const ws = FakeWebSocket.last;
    expect(ws.protocols).toEqual(["channelworks.v1.msgpack", "channelworks.v1"]);
    expect(ws.binaryType).toBe("arraybuffer");
    ws.open("channelworks.v1.msgpack");
    const room = socket.topic("room:lobby");
    const joined = room.join();
    ws.acceptJoin("room:lobby", { position: [1, "e"], recovered: true, missed: 0 });
    await joined;
    const reply = room.push("echo", { bytes: new Uint8Array([1, 2]) });
    ws.reply(ws.lastFrame("echo"), "ok", { n: 1 });
    await expect(reply).resolves.toEqual({ n: 1 });
    vi.advanceTimersByTime(1000);
    ws.reply(ws.lastFrame("heartbeat"), "ok");
    vi.advanceTimersByTime(1000);
    expect(socket.state).toBe("open"); // the binary heartbeat reply was understood
    expect(ws.raw.every((data) => data instanceof Uint8Array)).toBe(true);
    expect(ws.lastFrame("echo")[4]).toEqual({ bytes: new Uint8Array([1, 2]) });
  });

  it("falls back to JSON when the server has no msgpack, and refuses the other kind of frame", () => {
    const socket = socketFor({ format: "msgpack" });
    const errors: string[] = [];
    socket.on("error", (error) => errors.push(error.reason));
    socket.connect();
    const ws = FakeWebSocket.last.open("channelworks.v1");
    socket.topic("room:lobby").join();
    expect(typeof ws.raw[0]).toBe("string");
    ws.onmessage?.({ data: new ArrayBuffer(1) });
    expect(errors).toEqual(["bad frame: binary data"]);

    const binary = socketFor({ format: "msgpack" });
    binary.on("error", (error) => errors.push(error.reason));
    binary.connect();
    FakeWebSocket.last.open("channelworks.v1.msgpack").onmessage?.({ data: '[null,null,"$","x",{}]' });
    expect(errors.at(-1)).toBe('bad frame: [null,null,"$","x",{}]');
  });
});

describe("listeners", () => {
  it("one that throws neither stops the others nor the client; its error surfaces after", () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    const got: number[] = [];
    room.on("msg", () => {
      throw new Error("app bug");
    });
    room.on("msg", (payload) => got.push(payload.n as number));
    room.join();
    const join = ws.acceptJoin("room:lobby");
    ws.deliver([join[1], null, "room:lobby", "msg", { n: 1 }]);
    ws.deliver([join[1], null, "room:lobby", "msg", { n: 2 }]);
    expect(got).toEqual([1, 2]);
    expect(room.state).toBe("joined");
    expect(() => vi.advanceTimersByTime(0)).toThrow("app bug");
  });
});

describe("bad frames", () => {
  it("reports a frame it cannot read and goes on", () => {
    const [socket, ws] = openSocket();
    const errors: string[] = [];
    socket.on("error", (error) => errors.push(error.kind));
    ws.onmessage?.({ data: "not json" });
    ws.deliver([null, null, "room:x"]);
    ws.deliver([null, null, "room:x", "msg", []]);
    expect(errors).toEqual(["protocol", "protocol", "protocol"]);
    expect(socket.state).toBe("open");
  });
});
