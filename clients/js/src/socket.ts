import { backoff } from "./backoff";
import { TopicError } from "./errors";
import { Events } from "./events";
import { decode, encode } from "./msgpack";
import { Topic } from "./topic";
import type { Frame, Payload, WebSocketConstructor, WebSocketLike } from "./types";

/**
 * - `"closed"`: not connected, and not trying (before `connect()`, after `disconnect()`);
 * - `"connecting"`: a WebSocket is opening;
 * - `"open"`: connected; topics join and pushes go out;
 * - `"waiting"`: the connection dropped and a reconnect is scheduled (`reconnectIn` of the
 *   `close` event says when);
 * - `"stopped"`: the server closed with a stop code (by default 1000, 4401 session ended,
 *   4403 forbidden): no reconnect until the application calls `connect()` again.
 */
export type SocketState = "closed" | "connecting" | "open" | "waiting" | "stopped";

export interface CloseInfo {
  code: number;
  reason: string;
  /** The delay (ms) before the next attempt, or null when the socket will not reconnect. */
  reconnectIn: number | null;
}

export interface SocketEvents extends Record<string, unknown[]> {
  state: [SocketState];
  open: [];
  close: [CloseInfo];
  /** A frame the client could not understand (the connection goes on). */
  error: [TopicError];
}

export interface SocketOptions {
  /** Query-string parameters added to the URL (a token, a client version). Default none. */
  params?: Record<string, string>;
  /** How long (ms) a join, push or leave waits for its reply. Default 10 000. */
  timeout?: number;
  /** Heartbeat period (ms); a heartbeat unanswered for as long drops the connection. Default 25 000. */
  heartbeatInterval?: number;
  /** Base (ms) of the full-jitter backoff of reconnects and rejoins. Default 500. */
  backoffBase?: number;
  /** Most a backoff waits (ms). Default 20 000. */
  backoffMax?: number;
  /** A connection that stayed open this long (ms) resets the backoff. Default 10 000. */
  stableAfter?: number;
  /** Close codes after which the socket stops instead of reconnecting. Default [1000, 4401, 4403]. */
  stopCodes?: number[];
  /** Pushes a topic keeps while it is not joined (each still fails at its timeout). Default 100. */
  bufferSize?: number;
  /**
   * `"json"` (text frames) or `"msgpack"` (binary frames, smaller; the client falls back to
   * JSON when the server has no msgpack). Default `"json"`.
   */
  format?: "json" | "msgpack";
  /** The WebSocket class. Default: the global one. */
  WebSocket?: WebSocketConstructor;
}

type Resolved = Required<Omit<SocketOptions, "WebSocket">>;

const DEFAULTS: Resolved = {
  params: {},
  timeout: 10_000,
  heartbeatInterval: 25_000,
  backoffBase: 500,
  backoffMax: 20_000,
  stableAfter: 10_000,
  stopCodes: [1000, 4401, 4403],
  bufferSize: 100,
  format: "json",
};

const JSON_V1 = "channelworks.v1";
const MSGPACK_V1 = "channelworks.v1.msgpack";

/** Close code of a connection the client dropped itself (no heartbeat reply, no open in time). */
export const CLIENT_TIMEOUT = 4408;
/** The server's code for a bad frame: reconnecting is fine, but the backoff is never reset. */
const PROTOCOL_ERROR = 4400;

/**
 * One WebSocket to a topics endpoint, carrying many topics. Call `connect()` once; the
 * socket then reconnects by itself (full-jitter backoff, at once when the page becomes visible
 * or the network comes back) and rejoins every topic that was joined.
 */
export class Socket {
  state: SocketState = "closed";
  /** @internal */ readonly options: Resolved;
  private readonly events = new Events<SocketEvents>();
  private readonly topics = new Map<string, Topic>();
  private readonly WS: WebSocketConstructor;
  private ws: WebSocketLike | null = null;
  private binary = false;
  private refs = 0;
  private attempts = 0;
  private openedAt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private openTimer: ReturnType<typeof setTimeout> | undefined;
  private beatTimer: ReturnType<typeof setInterval> | undefined;
  private beatRef: string | null = null;
  private watching = false;

  constructor(
    readonly url: string,
    options: SocketOptions = {},
  ) {
    const { WebSocket: ws, ...rest } = options;
    this.options = { ...DEFAULTS, ...rest };
    const WS = ws ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("no WebSocket class: pass options.WebSocket");
    this.WS = WS;
  }

  /** Listen to `state`, `open`, `close` or `error`; returns a function that removes it. */
  on<K extends keyof SocketEvents>(name: K, fn: (...args: SocketEvents[K]) => void): () => void {
    return this.events.on(name, fn);
  }

  off<K extends keyof SocketEvents>(name: K, fn?: (...args: SocketEvents[K]) => void): void {
    this.events.off(name, fn);
  }

  /** Start connecting (and keep reconnecting). Does nothing when already open or connecting. */
  connect(): void {
    if (this.state === "open" || this.state === "connecting") return;
    this.watch(true);
    this.open();
  }

  /** Close the connection and stop reconnecting. Topics stay, and rejoin on `connect()`. */
  disconnect(code = 1000, reason = ""): void {
    this.watch(false);
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    if (ws) {
      this.detach(ws);
      ws.close(code, reason);
    }
    if (this.state !== "closed") this.closed(code, reason, false);
  }

  /**
   * The topic `name` of this socket: `join()` it to get its events. While a topic of that
   * name is on the socket the same object is returned (`params`, when given, replace its own).
   */
  topic(name: string, params?: Payload): Topic {
    // A name the server refuses closes the socket (4400), and every rejoin would send it again.
    if (typeof name !== "string" || !name || name === "$" || [...name].length > 200) {
      throw new TypeError(`a topic name has 1 to 200 characters and is not "$": ${JSON.stringify(name)}`);
    }
    let topic = this.topics.get(name);
    if (!topic) this.topics.set(name, (topic = new Topic(this, name, params ?? {})));
    else if (params) topic.params = params;
    return topic;
  }

  /** @internal A topic joining again after it was closed: the last one joined gets the frames. */
  adopt(topic: Topic): void {
    this.topics.set(topic.name, topic);
  }

  /** @internal */
  remove(topic: Topic): void {
    if (this.topics.get(topic.name) === topic) this.topics.delete(topic.name);
  }

  /** @internal A fresh ref, unique on this socket. */
  makeRef(): string {
    return String(++this.refs);
  }

  /** @internal Send a frame if connected; false when it could not be sent. */
  send(frame: Frame): boolean {
    if (this.state !== "open" || !this.ws) return false;
    this.ws.send(this.binary ? encode(frame) : JSON.stringify(frame));
    return true;
  }

  private setState(state: SocketState): void {
    if (this.state === state) return;
    this.state = state;
    this.events.emit("state", state);
  }

  private endpoint(): string {
    const base = (globalThis as { location?: { href: string } }).location?.href;
    const url = new URL(this.url, base);
    url.protocol = url.protocol.replace(/^http/, "ws");
    for (const [key, value] of Object.entries(this.options.params)) url.searchParams.set(key, value);
    return url.href;
  }

  private open(): void {
    clearTimeout(this.retryTimer);
    this.setState("connecting");
    const protocols = this.options.format === "msgpack" ? [MSGPACK_V1, JSON_V1] : [JSON_V1];
    const ws = new this.WS(this.endpoint(), protocols);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => this.opened(ws.protocol === MSGPACK_V1);
    ws.onmessage = (event) => this.message(event.data);
    ws.onclose = (event) => {
      this.detach(ws);
      this.closed(event.code, event.reason, true);
    };
    ws.onerror = () => {}; // a close event follows
    // A handshake that hangs (a black-holed network) counts as a failed attempt.
    this.openTimer = setTimeout(() => this.drop("open timeout"), this.options.timeout);
  }

  private opened(binary: boolean): void {
    clearTimeout(this.openTimer);
    this.binary = binary;
    this.openedAt = Date.now();
    this.beatRef = null;
    this.beatTimer = setInterval(() => this.beat(), this.options.heartbeatInterval);
    this.setState("open");
    this.events.emit("open");
    for (const topic of [...this.topics.values()]) topic.socketOpened();
  }

  private beat(): void {
    if (this.beatRef) return this.drop("heartbeat timeout");
    this.beatRef = this.makeRef();
    this.send([null, this.beatRef, "$", "heartbeat", {}]);
  }

  /** Give up on the current connection without waiting for a close handshake, and retry. */
  private drop(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    this.detach(ws);
    ws.close(1000, reason);
    this.closed(CLIENT_TIMEOUT, reason, true);
  }

  private detach(ws: WebSocketLike): void {
    ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null;
    if (this.ws === ws) this.ws = null;
  }

  private closed(code: number, reason: string, retry: boolean): void {
    const wasOpen = this.state === "open";
    clearTimeout(this.openTimer);
    clearInterval(this.beatTimer);
    this.ws = null;
    if (wasOpen) {
      if (Date.now() - this.openedAt >= this.options.stableAfter && code !== PROTOCOL_ERROR) {
        this.attempts = 0;
      }
      for (const topic of [...this.topics.values()]) topic.socketClosed();
    }
    let reconnectIn: number | null = null;
    if (!retry) this.setState("closed");
    else if (this.options.stopCodes.includes(code)) {
      this.watch(false);
      this.setState("stopped");
    } else {
      const { backoffBase, backoffMax } = this.options;
      reconnectIn = backoff(this.attempts++, backoffBase, backoffMax);
      this.retryTimer = setTimeout(() => this.open(), reconnectIn);
      this.setState("waiting");
    }
    this.events.emit("close", { code, reason, reconnectIn });
  }

  private message(data: unknown): void {
    let frame: unknown = null;
    try {
      if (this.binary === (typeof data !== "string")) {
        frame = this.binary ? decode(data as ArrayBuffer) : JSON.parse(data as string);
      }
    } catch {}
    if (!isFrame(frame)) {
      const shown = typeof data === "string" ? data.slice(0, 100) : "binary data";
      this.events.emit("error", new TopicError("protocol", `bad frame: ${shown}`));
      return;
    }
    if (frame[2] === "$") {
      if (frame[1] !== null && frame[1] === this.beatRef) this.beatRef = null;
    } else this.topics.get(frame[2])?.receive(frame);
  }

  // The network coming back, or the page becoming visible, cuts a pending backoff short.
  private wake = (event: Event): void => {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    const now = event.type === "online" || doc?.visibilityState !== "hidden";
    if (this.state === "waiting" && now) this.open();
  };

  private watch(on: boolean): void {
    if (on === this.watching) return;
    this.watching = on;
    const g = globalThis as {
      addEventListener?: typeof addEventListener;
      removeEventListener?: typeof removeEventListener;
      document?: Pick<Document, "addEventListener" | "removeEventListener">;
    };
    const method = on ? "addEventListener" : "removeEventListener";
    g[method]?.("online", this.wake);
    g.document?.[method]("visibilitychange", this.wake);
  }
}

const isFrame = (value: unknown): value is Frame =>
  Array.isArray(value) &&
  (value.length === 5 || value.length === 6) &&
  (value[0] === null || typeof value[0] === "string") &&
  (value[1] === null || typeof value[1] === "string") &&
  typeof value[2] === "string" &&
  typeof value[3] === "string" &&
  typeof value[4] === "object" &&
  value[4] !== null &&
  !Array.isArray(value[4]);
