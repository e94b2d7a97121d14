import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type JoinResult, TopicError } from "../src";
import { FakeWebSocket, openSocket, socketFor } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Settle a promise into a value to assert on: ["ok", value] or ["error", kind, reason]. */
const outcome = <T>(promise: Promise<T>) => {
  const box: { value?: unknown[] } = {};
  promise.then(
    (value) => (box.value = ["ok", value]),
    (error: TopicError) => (box.value = ["error", error.kind, error.reason]),
  );
  return box;
};

/** `levels` arrays, one inside the other. */
const nested = (levels: number): unknown => {
  let value: unknown = [];
  for (let i = 1; i < levels; i++) value = [value];
  return value;
};

/** Let settled promises run their callbacks. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** Reconnect the socket through its backoff; returns the new connection, open. */
const reconnect = (ws: FakeWebSocket, code = 1001): FakeWebSocket => {
  vi.spyOn(Math, "random").mockReturnValue(0);
  ws.serverClose(code);
  vi.advanceTimersByTime(0);
  return FakeWebSocket.last.open();
};

describe("join", () => {
  it("sends a join with its params and resolves with the server's response", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby", { nick: "ada" });
    const joined = room.join();
    const frame = ws.lastFrame("join", "room:lobby");
    expect(frame).toEqual([frame[1], frame[1], "room:lobby", "join", { params: { nick: "ada" } }]);
    expect(room.state).toBe("joining");
    ws.reply(frame, "ok", { response: { welcome: true } });
    await expect(joined).resolves.toEqual({ response: { welcome: true }, rejoin: false });
    expect(room.state).toBe("joined");
    expect(room.join()).toBe(joined); // joining again is the same join
  });

  it("waits for the socket to open before sending the join", () => {
    const socket = socketFor();
    const room = socket.topic("room:lobby");
    room.join();
    socket.connect();
    const ws = FakeWebSocket.last;
    expect(ws.sent).toEqual([]);
    ws.open();
    expect(ws.frames("join")).toHaveLength(1);
  });

  it("is refused: rejects with the reason, closes the topic and never rejoins it", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:vip");
    const closed: string[] = [];
    room.onClose((error) => closed.push(`${error.kind}:${error.reason}`));
    const joined = room.join();
    ws.reply(ws.lastFrame("join"), "error", { reason: "unauthorized" });
    await expect(joined).rejects.toMatchObject({ kind: "refused", reason: "unauthorized" });
    expect(room.state).toBe("closed");
    expect(closed).toEqual(["refused:unauthorized"]);
    const next = reconnect(ws);
    expect(next.frames("join")).toEqual([]);
    await expect(room.push("x")).rejects.toMatchObject({ kind: "closed" });
  });

  it("times out: rejects, undoes a late join, and keeps trying with backoff", async () => {
    const [socket, ws] = openSocket({ timeout: 1000, backoffBase: 100 });
    const room = socket.topic("room:slow");
    const joins: JoinResult[] = [];
    room.onJoin((result) => joins.push(result));
    const joined = outcome(room.join());
    const first = ws.lastFrame("join");
    vi.advanceTimersByTime(1000);
    await settle();
    expect(joined.value).toEqual(["error", "timeout", "join"]);
    expect(room.state).toBe("errored");
    expect(ws.lastFrame("leave")[0]).toBe(first[0]); // the leave names the timed-out join
    vi.advanceTimersByTime(100);
    const second = ws.lastFrame("join");
    expect(second[1]).not.toBe(first[1]);
    ws.reply(first, "ok"); // the late reply of the first join: ignored
    expect(room.state).toBe("joining");
    ws.reply(second, "ok", { response: {} });
    expect(room.state).toBe("joined");
    expect(joins).toHaveLength(1);
  });
});

describe("push", () => {
  it("resolves with an ok reply's response and rejects with an error reply's", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    room.join();
    const join = ws.acceptJoin("room:lobby");
    const ok = room.push("new_msg", { body: "hi" });
    const push = ws.lastFrame("new_msg");
    expect(push).toEqual([join[1], push[1], "room:lobby", "new_msg", { body: "hi" }]);
    const bad = room.push("new_msg", { body: "" });
    ws.reply(ws.lastFrame("new_msg"), "error", { reason: "empty" });
    ws.reply(push, "ok", { id: 17 });
    await expect(ok).resolves.toEqual({ id: 17 });
    await expect(bad).rejects.toMatchObject({ kind: "reply", reason: "empty", response: { reason: "empty" } });
  });

  it("fails at its timeout when no reply comes", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    room.join();
    ws.acceptJoin("room:lobby");
    const result = outcome(room.push("no_reply", {}, { timeout: 500 }));
    vi.advanceTimersByTime(499);
    await settle();
    expect(result.value).toBeUndefined();
    vi.advanceTimersByTime(1);
    await settle();
    expect(result.value).toEqual(["error", "timeout", "no_reply"]);
  });

  it("fails alone, without sending, for what the server would close the socket for", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    room.join();
    ws.acceptJoin("room:lobby");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const push of [
      room.push("", {}),
      room.push("x".repeat(101)),
      room.push("leave"),
      room.push("presence_diff"),
      room.push("$ping"),
      room.push("msg", [] as unknown as Record<string, unknown>),
      room.push("msg", cyclic),
      room.push("msg", { deep: nested(100) }), // the payload is a level too: 101
    ]) {
      await expect(push).rejects.toMatchObject({ kind: "protocol" });
    }
    expect(ws.sent.map((f) => f[3])).toEqual(["join"]);
    expect(() => socket.topic("")).toThrow(TypeError);
    expect(() => socket.topic("$")).toThrow(TypeError);
    expect(() => socket.topic("r".repeat(201))).toThrow(TypeError);
    expect(socket.topic("😀".repeat(200)).name).toHaveLength(400); // 200 characters, as Python counts
    const deepest = room.push("msg", { deep: nested(99) });
    ws.reply(ws.lastFrame("msg"), "ok");
    await expect(deepest).resolves.toEqual({});
    const fine = room.push("x".repeat(100));
    ws.reply(ws.lastFrame("x".repeat(100)), "ok");
    await expect(fine).resolves.toEqual({});
  });

  it("is rejected when the topic was never joined", async () => {
    const [socket] = openSocket();
    await expect(socket.topic("room:lobby").push("x")).rejects.toBeInstanceOf(TopicError);
  });

  it("made while offline waits in the buffer and goes out after the rejoin", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    room.join();
    ws.acceptJoin("room:lobby");
    vi.spyOn(Math, "random").mockReturnValue(0);
    ws.serverClose(1006);
    const later = room.push("new_msg", { body: "offline" });
    expect(room.state).toBe("errored");
    vi.advanceTimersByTime(0);
    const next = FakeWebSocket.last.open();
    expect(next.frames("new_msg")).toEqual([]); // not before the join is answered
    const rejoin = next.acceptJoin("room:lobby");
    const push = next.lastFrame("new_msg");
    expect(push[0]).toBe(rejoin[1]); // sent under the new join
    next.reply(push, "ok", { id: 1 });
    await expect(later).resolves.toEqual({ id: 1 });
  });

  it("buffered pushes each fail at their timeout, are never sent after, and the buffer is bounded", async () => {
    const [socket, ws] = openSocket({ bufferSize: 2 });
    const room = socket.topic("room:lobby");
    room.join();
    ws.acceptJoin("room:lobby");
    ws.serverClose(1006);
    const a = outcome(room.push("a", {}, { timeout: 100 }));
    const b = outcome(room.push("b", {}, { timeout: 5000 }));
    const c = outcome(room.push("c"));
    await settle();
    expect(c.value).toEqual(["error", "overflow", "c"]);
    vi.advanceTimersByTime(100);
    await settle();
    expect(a.value).toEqual(["error", "timeout", "a"]);
    expect(b.value).toBeUndefined();
    const d = outcome(room.push("d")); // a's place is free again
    vi.spyOn(Math, "random").mockReturnValue(0.99);
    vi.advanceTimersByTime(2000);
    const next = FakeWebSocket.last.open();
    next.acceptJoin("room:lobby");
    expect(next.sent.map((f) => f[3])).toEqual(["join", "b", "d"]);
    await settle();
    expect(d.value).toBeUndefined();
  });

  it("already sent when the connection drops fails at once as disconnected", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    room.join();
    ws.acceptJoin("room:lobby");
    const result = outcome(room.push("x"));
    ws.serverClose(1006);
    await settle();
    expect(result.value).toEqual(["error", "disconnected", "room:lobby"]);
  });
});

describe("rejoin and resume", () => {
  it("rejoins every joined topic after a reconnect, each with its last position as since", () => {
    const [socket, ws] = openSocket();
    const lobby = socket.topic("room:lobby");
    const news = socket.topic("news");
    const left = socket.topic("room:old");
    const kicked = socket.topic("room:kick");
    for (const topic of [lobby, news, left, kicked]) topic.join();
    const lobbyJoin = ws.acceptJoin("room:lobby", { recovered: true, position: [4, "e1"], missed: 0 });
    ws.acceptJoin("news");
    ws.acceptJoin("room:old");
    const kickJoin = ws.acceptJoin("room:kick");
    ws.deliver([lobbyJoin[1], null, "room:lobby", "msg", { n: 5 }, [5, "e1"]]);
    left.leave();
    ws.deliver([kickJoin[1], null, "room:kick", "close", { reason: "kicked" }]);
    expect(kicked.state).toBe("closed");

    const next = reconnect(ws);
    expect(next.frames("join").map((f) => [f[2], f[4]])).toEqual([
      ["room:lobby", { params: {}, since: [5, "e1"] }],
      ["news", { params: {} }],
    ]);
  });

  it("tracks the position from pushes, drops a replayed one and surfaces recovered", () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    const got: unknown[] = [];
    const joins: JoinResult[] = [];
    room.on("msg", (payload, position) => got.push([payload.n, position]));
    room.onJoin((result) => joins.push(result));
    room.join();
    const join = ws.acceptJoin("room:lobby", { recovered: true, position: [7, "e1"], missed: 0 });
    expect(room.position).toEqual([7, "e1"]);
    ws.deliver([join[1], null, "room:lobby", "msg", { n: 8 }, [8, "e1"]]);
    ws.deliver([join[1], null, "room:lobby", "msg", { n: 8 }, [8, "e1"]]); // a replay
    ws.deliver([join[1], null, "room:lobby", "msg", { n: 3 }, [3, "e1"]]); // older still
    expect(got).toEqual([[8, [8, "e1"]]]);

    // Resume: the missed messages follow the reply and move the position.
    let next = reconnect(ws);
    const rejoin = next.lastFrame("join");
    expect(rejoin[4]).toEqual({ params: {}, since: [8, "e1"] });
    next.acceptJoin("room:lobby", { recovered: true, position: [10, "e1"], missed: 2 });
    expect(room.position).toEqual([8, "e1"]);
    next.deliver([rejoin[1], null, "room:lobby", "msg", { n: 9 }, [9, "e1"]]);
    next.deliver([rejoin[1], null, "room:lobby", "msg", { n: 10 }, [10, "e1"]]);
    expect(got.slice(1)).toEqual([
      [9, [9, "e1"]],
      [10, [10, "e1"]],
    ]);
    expect(joins.at(-1)).toEqual({ response: {}, recovered: true, position: [10, "e1"], missed: 2, rejoin: true });

    // Not recovered: the app is told, and the position jumps to the server's.
    next = reconnect(next);
    next.acceptJoin("room:lobby", { recovered: false, position: [1, "e2"], missed: 0 });
    expect(joins.at(-1)?.recovered).toBe(false);
    expect(room.position).toEqual([1, "e2"]);
    next.deliver([next.lastFrame("join")[1], null, "room:lobby", "msg", { n: 2 }, [2, "e2"]]);
    expect(got.at(-1)).toEqual([2, [2, "e2"]]);
  });

  it("drops frames of an earlier join of the topic", () => {
    const [socket, ws] = openSocket({ timeout: 1000 });
    const room = socket.topic("room:lobby");
    const got: unknown[] = [];
    room.on("msg", (payload) => got.push(payload.n));
    room.join();
    const first = ws.acceptJoin("room:lobby");
    const next = reconnect(ws);
    const second = next.acceptJoin("room:lobby");
    next.deliver([first[1], null, "room:lobby", "msg", { n: 1 }]);
    next.deliver([second[1], null, "room:lobby", "msg", { n: 2 }]);
    expect(got).toEqual([2]);
  });

  it("after a server topic error fails pushes waiting for replies and rejoins with backoff", async () => {
    const [socket, ws] = openSocket({ backoffBase: 1000 });
    const room = socket.topic("room:lobby");
    const errors: string[] = [];
    room.onError((error) => errors.push(error.kind));
    room.join();
    const join = ws.acceptJoin("room:lobby", { recovered: true, position: [2, "e"], missed: 0 });
    const pending = outcome(room.push("x"));
    vi.spyOn(Math, "random").mockReturnValue(0.5);
    ws.deliver([join[1], null, "room:lobby", "error", { reason: "crashed" }]);
    await settle();
    expect(pending.value).toEqual(["error", "crashed", "crashed"]);
    expect(errors).toEqual(["crashed"]);
    expect(room.state).toBe("errored");
    vi.advanceTimersByTime(499);
    expect(ws.frames("join")).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(ws.lastFrame("join")[4]).toEqual({ params: {}, since: [2, "e"] });
  });

  it("leave() sends a leave, closes the topic and stops its events", () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    const got: unknown[] = [];
    room.on("msg", (payload) => got.push(payload));
    room.join();
    const join = ws.acceptJoin("room:lobby");
    const pending = outcome(room.push("x"));
    room.leave();
    const leave = ws.lastFrame("leave");
    expect(leave[0]).toBe(join[1]);
    ws.reply(leave, "ok");
    ws.deliver([join[1], null, "room:lobby", "msg", {}]);
    expect(got).toEqual([]);
    expect(room.state).toBe("closed");
    expect(socket.topic("room:lobby")).not.toBe(room); // a fresh topic object now
    return settle().then(() => expect(pending.value).toEqual(["error", "closed", "left"]));
  });

  it("joins again after a leave, and after a disconnect and connect", () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    const got: unknown[] = [];
    room.on("msg", (payload) => got.push(payload.n));
    room.join();
    ws.acceptJoin("room:lobby");
    room.leave();
    room.join();
    const again = ws.acceptJoin("room:lobby");
    expect(room.state).toBe("joined");
    ws.deliver([again[1], null, "room:lobby", "msg", { n: 1 }]);
    socket.disconnect();
    expect(room.state).toBe("errored");
    socket.connect();
    const next = FakeWebSocket.last.open();
    const third = next.acceptJoin("room:lobby");
    next.deliver([third[1], null, "room:lobby", "msg", { n: 2 }]);
    expect(got).toEqual([1, 2]);
  });

  it("leave() while the join is on its way leaves that join, and its late reply changes nothing", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    const joined = outcome(room.join());
    const join = ws.lastFrame("join", "room:lobby");
    room.leave();
    const leave = ws.lastFrame("leave");
    expect(leave[0]).toBe(join[1]); // the server handles it after the join
    ws.reply(join, "ok", { response: {} });
    ws.deliver([join[1], null, "room:lobby", "msg", {}]);
    expect(room.state).toBe("closed");
    expect(ws.frames("join")).toHaveLength(1); // no rejoin
    await settle();
    expect(joined.value).toEqual(["error", "closed", "left"]);
  });

  it("a reply that comes after its push timed out is dropped", async () => {
    const [socket, ws] = openSocket();
    const room = socket.topic("room:lobby");
    room.join();
    ws.acceptJoin("room:lobby");
    const late = outcome(room.push("slow", {}, { timeout: 100 }));
    const frame = ws.lastFrame("slow");
    vi.advanceTimersByTime(100);
    await settle();
    expect(late.value).toEqual(["error", "timeout", "slow"]);
    ws.reply(frame, "ok", { n: 1 });
    const next = outcome(room.push("fast"));
    ws.reply(ws.lastFrame("fast"), "ok", { n: 2 });
    await settle();
    expect(late.value).toEqual(["error", "timeout", "slow"]);
    expect(next.value).toEqual(["ok", { n: 2 }]);
  });
});
