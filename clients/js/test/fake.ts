// A WebSocket stand-in driven by the tests: they play the server (open, deliver, close) and
// read what the client sent.
import { Socket, type SocketOptions } from "../src";
import { decode, encode } from "../src/msgpack";
import type { Frame, Payload } from "../src/types";

export class FakeWebSocket {
  static all: FakeWebSocket[] = [];
  readyState = 0;
  protocol = "";
  binaryType = "blob";
  sent: Frame[] = [];
  /** The raw data of each send, as the server would read it. */
  raw: Array<string | Uint8Array> = [];
  closedWith: { code: number | undefined; reason: string | undefined } | null = null;
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.all.push(this);
  }

  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.all.at(-1);
    if (!ws) throw new Error("no socket was opened");
    return ws;
  }

  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.raw.push(data);
    this.sent.push((typeof data === "string" ? JSON.parse(data) : decode(data)) as Frame);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  // --- the server's side

  /** Accept the handshake, choosing `protocol` (default: the first one offered). */
  open(protocol?: string): this {
    const offered = typeof this.protocols === "string" ? [this.protocols] : (this.protocols ?? []);
    this.protocol = protocol ?? offered[0] ?? "";
    this.readyState = 1;
    this.onopen?.({});
    return this;
  }

  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  deliver(frame: unknown[]): void {
    const binary = this.protocol === "channelworks.v1.msgpack";
    this.onmessage?.({ data: binary ? encode(frame).buffer : JSON.stringify(frame) });
  }

  /** The frames sent with `event` (on `topic` when given). */
  frames(event: string, topic?: string): Frame[] {
    return this.sent.filter((f) => f[3] === event && (topic === undefined || f[2] === topic));
  }

  lastFrame(event: string, topic?: string): Frame {
    const frame = this.frames(event, topic).at(-1);
    if (!frame) throw new Error(`no ${event} frame was sent: ${JSON.stringify(this.sent)}`);
    return frame;
  }

  reply(frame: Frame, status: "ok" | "error", response: Payload = {}): void {
    this.deliver([frame[0], frame[1], frame[2], "reply", { status, response }]);
  }

  /** Answer the last join of `topic` with ok and `body` (recovered, position, ...). */
  acceptJoin(topic: string, body: Payload = {}): Frame {
    const join = this.lastFrame("join", topic);
    this.reply(join, "ok", { response: {}, ...body });
    return join;
  }
}

export const socketFor = (options: SocketOptions = {}): Socket => {
  FakeWebSocket.all = [];
  return new Socket("ws://example.test/topics/", { WebSocket: FakeWebSocket, ...options });
};

/** A socket already open, and its fake connection. */
export const openSocket = (options: SocketOptions = {}): [Socket, FakeWebSocket] => {
  const socket = socketFor(options);
  socket.connect();
  return [socket, FakeWebSocket.last.open()];
};
