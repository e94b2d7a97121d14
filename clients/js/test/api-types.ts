// Compiled by `npm run check` (tsc -p test), never run: the public API as a TypeScript caller
// writes it, so a change that breaks their code breaks the check.
import { type JoinResult, Presence, Socket, type SocketState, TopicError } from "../src";

export function usage(): void {
  const socket = new Socket("/ws/topics/", { timeout: 5000, params: { token: "t" } });
  socket.on("close", ({ code, reason, reconnectIn }) => [code, reason, reconnectIn ?? 0]);
  const state: SocketState = socket.state;
  const room = socket.topic("room:lobby", { nick: "ada" });
  room.join().then((result: JoinResult) => result.recovered === false && result.rejoin);
  room.on<{ body: string }>("message", (msg, position) => msg.body.length + (position?.[0] ?? 0));
  room.push<{ id: number }>("new_msg", { body: "hi" }, { timeout: 100 }).then((reply) => reply.id + 1);
  room.push("x").catch((error: unknown) => error instanceof TopicError && error.kind === "timeout");
  room.onJoin((result) => result.position?.[1]);
  const presence = new Presence<{ color: string }>(room);
  presence.onJoin((key, current, joined) => [key, current?.metas.length, joined.metas[0]?.phx_ref]);
  presence.list((key, { metas }) => `${key} ${metas[0]?.color}`);
  void state;
}
