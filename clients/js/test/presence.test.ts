import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Presence } from "../src";
import { FakeWebSocket, openSocket } from "./fake";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const meta = (ref: string, extra = {}) => ({ phx_ref: ref, ...extra });

const joinedRoom = () => {
  const [socket, ws] = openSocket();
  const room = socket.topic("room:lobby");
  const presence = new Presence(room);
  const log: string[] = [];
  presence.onJoin((key, current, joined) =>
    log.push(`join ${key} ${current ? current.metas.length : "new"} +${joined.metas.length}`),
  );
  presence.onLeave((key, current, left) => log.push(`leave ${key} -${left.metas.length} =${current.metas.length}`));
  presence.onSync(() => log.push("sync"));
  room.join();
  const join = ws.acceptJoin("room:lobby");
  const push = (event: string, payload: object) => ws.deliver([join[1], null, "room:lobby", event, payload]);
  return { socket, ws, room, presence, log, push };
};

describe("Presence", () => {
  it("lists members grouped by key, one meta per socket, through state and diffs", () => {
    const { presence, log, push } = joinedRoom();
    push("presence_state", { ada: { metas: [meta("a1", { tab: 1 })] }, bob: { metas: [meta("b1")] } });
    expect(presence.list()).toEqual([
      { key: "ada", metas: [meta("a1", { tab: 1 })] },
      { key: "bob", metas: [meta("b1")] },
    ]);
    push("presence_diff", { joins: { ada: { metas: [meta("a2", { tab: 2 })] } }, leaves: {} });
    expect(presence.list((key, entry) => `${key}:${entry.metas.map((m) => m.phx_ref)}`)).toEqual([
      "ada:a1,a2",
      "bob:b1",
    ]);
    push("presence_diff", { joins: {}, leaves: { ada: { metas: [meta("a1")] }, bob: { metas: [meta("b1")] } } });
    expect(presence.list()).toEqual([{ key: "ada", metas: [meta("a2", { tab: 2 })] }]);
    expect(log).toEqual([
      "join ada new +1",
      "join bob new +1",
      "sync",
      "join ada 1 +1",
      "sync",
      "leave ada -1 =1",
      "leave bob -1 =0",
      "sync",
    ]);
  });

  it("applies a repeated join or leave once (diffs are idempotent)", () => {
    const { presence, log, push } = joinedRoom();
    push("presence_state", { ada: { metas: [meta("a1")] } });
    log.length = 0;
    push("presence_diff", { joins: { ada: { metas: [meta("a1")] } }, leaves: { bob: { metas: [meta("b1")] } } });
    push("presence_diff", { joins: {}, leaves: { ada: { metas: [meta("a1")] } } });
    push("presence_diff", { joins: {}, leaves: { ada: { metas: [meta("a1")] } } });
    expect(presence.list()).toEqual([]);
    expect(log).toEqual(["sync", "leave ada -1 =0", "sync", "sync"]);
  });

  it("applies a diff that arrives before the state after it", () => {
    const { presence, log, push } = joinedRoom();
    push("presence_diff", { joins: { cy: { metas: [meta("c1")] } }, leaves: { ada: { metas: [meta("a1")] } } });
    expect(presence.list()).toEqual([]);
    expect(log).toEqual([]);
    push("presence_state", { ada: { metas: [meta("a1")] }, bob: { metas: [meta("b1")] } });
    expect(presence.list().map((e) => e.key)).toEqual(["bob", "cy"]);
    expect(log.at(-1)).toBe("sync");
    expect(log.filter((l) => l === "sync")).toHaveLength(1);
  });

  it("compares the state after a rejoin with what it knew: who left and who came meanwhile", () => {
    const { ws, presence, log, push } = joinedRoom();
    push("presence_state", { ada: { metas: [meta("a1")] }, bob: { metas: [meta("b1")] } });
    log.length = 0;
    vi.spyOn(Math, "random").mockReturnValue(0);
    ws.serverClose(1001);
    vi.advanceTimersByTime(0);
    const next = FakeWebSocket.last.open();
    const rejoin = next.acceptJoin("room:lobby");
    next.deliver([rejoin[1], null, "room:lobby", "presence_state", {
      ada: { metas: [meta("a1")] },
      cy: { metas: [meta("c1")] },
    }]);
    expect(presence.list().map((e) => e.key)).toEqual(["ada", "cy"]);
    expect(log).toEqual(["join cy new +1", "leave bob -1 =0", "sync"]);
  });

  it("drops diffs of an earlier join whose state never came", () => {
    const { ws, presence, push } = joinedRoom();
    push("presence_diff", { joins: { ghost: { metas: [meta("g1")] } }, leaves: {} });
    vi.spyOn(Math, "random").mockReturnValue(0);
    ws.serverClose(1006);
    vi.advanceTimersByTime(0);
    const next = FakeWebSocket.last.open();
    const rejoin = next.acceptJoin("room:lobby");
    next.deliver([rejoin[1], null, "room:lobby", "presence_state", { ada: { metas: [meta("a1")] } }]);
    expect(presence.list().map((e) => e.key)).toEqual(["ada"]);
  });
});
