import { backoff } from "./backoff";
import { TopicError } from "./errors";
import { Events } from "./events";
import type { Socket } from "./socket";
import { type Frame, isPosition, type JoinResult, type Payload, type Position } from "./types";

/**
 * - `"closed"`: not joined and not trying (before `join()`, after `leave()`, a refused join
 *   or a `close` from the server);
 * - `"joining"`: a join is on its way, or waits for the socket to open;
 * - `"joined"`: events arrive and pushes go out;
 * - `"errored"`: the join timed out, the connection dropped or the server topic crashed; the
 *   topic rejoins by itself (with backoff, or as soon as the socket reopens).
 */
export type TopicState = "closed" | "joining" | "joined" | "errored";

/** Lifecycle events of a topic (application events are listened to with `on`). */
export interface TopicEvents extends Record<string, unknown[]> {
  /** Each successful join, rejoins included: check `recovered` after a rejoin. */
  join: [JoinResult];
  /** The topic lost its join and will rejoin (`kind` "timeout", "disconnected" or "crashed"). */
  error: [TopicError];
  /** The topic is closed for good: refused, closed by the server, or left. */
  close: [TopicError];
}

export interface PushOptions {
  /** How long (ms) to wait for the reply. Default: the socket's `timeout`. */
  timeout?: number;
}

type Listener<P = Payload> = (payload: P, position: Position | undefined) => void;

interface Push {
  event: string;
  payload: Payload;
  resolve(response: Payload): void;
  reject(error: TopicError): void;
  timer: ReturnType<typeof setTimeout>;
  ref?: string;
}

/**
 * One topic on a socket (`socket.topic("room:lobby")`). Join it, listen to its events with
 * `on`, push events with `push`. Its last position is kept and sent on every rejoin, so a
 * topic with history resumes where it was.
 */
export class Topic {
  state: TopicState = "closed";
  /** The ref of the current join: frames of other joins are dropped. */
  joinRef: string | null = null;
  /** The position of the last push received (topics with history), sent as `since` on rejoin. */
  position: Position | null = null;
  private readonly app = new Events<Record<string, [Payload, Position | undefined]>>();
  private readonly life = new Events<TopicEvents>();
  private buffer: Push[] = [];
  private readonly inflight = new Map<string, Push>();
  private joinTimer: ReturnType<typeof setTimeout> | undefined;
  private rejoinTimer: ReturnType<typeof setTimeout> | undefined;
  private rejoins = 0;
  private joinedOnce = false;
  private first: { resolve(r: JoinResult): void; reject(e: TopicError): void } | null = null;
  private joining: Promise<JoinResult> | null = null;

  /** @internal use `socket.topic(name, params)` */
  constructor(
    readonly socket: Socket,
    readonly name: string,
    /** Sent with every join, rejoins included: change it to change what the next join sends. */
    public params: Payload,
  ) {}

  /** Call `fn(payload, position)` on each `event` pushed by the server. */
  /** `P` types the payload for TypeScript callers (nothing checks it at run time). */
  on<P = Payload>(event: string, fn: Listener<P>): () => void {
    return this.app.on(event, fn as Listener);
  }

  off<P = Payload>(event: string, fn?: Listener<P>): void {
    this.app.off(event, fn as Listener | undefined);
  }

  /** Each successful join, rejoins included. */
  onJoin(fn: (result: JoinResult) => void): () => void {
    return this.life.on("join", fn);
  }

  onError(fn: (error: TopicError) => void): () => void {
    return this.life.on("error", fn);
  }

  onClose(fn: (error: TopicError) => void): () => void {
    return this.life.on("close", fn);
  }

  /**
   * Join the topic. The promise resolves with the first successful join and rejects with a
   * `TopicError`: `"refused"` (the topic is closed), or `"timeout"` (no reply within the
   * timeout, counted from when the join was sent; the topic keeps trying, `onJoin` tells when
   * it gets in). Calling it again while joining or joined returns the same promise.
   */
  join(): Promise<JoinResult> {
    if (this.state === "closed") {
      this.joining = new Promise((resolve, reject) => (this.first = { resolve, reject }));
      this.joining.catch(() => {}); // the caller may only listen to onJoin/onClose
      this.state = "joining";
      this.socket.adopt(this); // back on the socket after a leave() or a refusal
      this.sendJoin();
    }
    return this.joining as Promise<JoinResult>;
  }

  /**
   * Push `event` to the server topic; resolves with the reply's response, rejects with a
   * `TopicError` (`"reply"`, `"timeout"`, `"disconnected"`, `"overflow"`, `"closed"`). While
   * the topic is not joined (offline, rejoining) the push waits in a bounded buffer.
   */
  push<R = Payload>(event: string, payload: Payload = {}, options: PushOptions = {}): Promise<R> {
    return new Promise<Payload>((resolve, reject) => {
      // What the server would close the whole socket for (4400) fails this push alone.
      if (!validEvent(event) || !isObject(payload) || tooDeep(payload)) {
        return reject(new TopicError("protocol", `cannot push ${JSON.stringify(event)}`));
      }
      if (this.state === "closed") return reject(new TopicError("closed", this.name));
      const { timeout = this.socket.options.timeout } = options;
      const push: Push = { event, payload, resolve, reject, timer: undefined as never };
      push.timer = setTimeout(() => {
        this.buffer = this.buffer.filter((p) => p !== push);
        if (push.ref) this.inflight.delete(push.ref);
        reject(new TopicError("timeout", event));
      }, timeout);
      if (this.state === "joined" && this.sendPush(push)) return;
      if (this.buffer.length >= this.socket.options.bufferSize) {
        clearTimeout(push.timer);
        return reject(new TopicError("overflow", event));
      }
      this.buffer.push(push);
    }) as Promise<R>;
  }

  /**
   * Leave the topic: it is closed at once (no event after this call, pending pushes fail with
   * `"closed"`), and the server is told when the socket is connected. Join it again with
   * `join()`.
   */
  leave(): void {
    const ref = this.joinRef;
    this.close(new TopicError("closed", "left"));
    if (ref) this.socket.send([ref, this.socket.makeRef(), this.name, "leave", {}]);
  }

  /** @internal */
  socketOpened(): void {
    if (this.state === "joining" || this.state === "errored") this.sendJoin();
  }

  /** @internal */
  socketClosed(): void {
    clearTimeout(this.joinTimer);
    clearTimeout(this.rejoinTimer);
    this.failInflight(new TopicError("disconnected", this.name));
    if (this.state === "joined" || this.state === "joining") {
      const joined = this.state === "joined";
      this.state = "errored";
      if (joined) this.life.emit("error", new TopicError("disconnected", this.name));
    }
  }

  /** @internal A frame of this topic from the socket. */
  receive(frame: Frame): void {
    const [joinRef, ref, , event, payload, position] = frame;
    if (event === "reply") {
      if (ref === null) return;
      if (ref === this.joinRef && this.state === "joining") return this.joinReplied(payload);
      const push = this.inflight.get(ref);
      if (!push) return; // a leave's reply, or one that came after its push timed out
      this.inflight.delete(ref);
      clearTimeout(push.timer);
      const { status, response } = payload;
      const body = isObject(response) ? response : {};
      if (status === "ok") push.resolve(body);
      else push.reject(new TopicError("reply", String(body.reason ?? status), body));
      return;
    }
    if (joinRef !== null && joinRef !== this.joinRef) return; // from an earlier join
    if (event === "close") return this.close(new TopicError("closed", String(payload.reason)));
    if (event === "error") return this.crashed(String(payload.reason));
    if (position) {
      if (!isPosition(position)) return;
      // Never the same message twice: an offset not past the last one of its epoch is a replay.
      const last = this.position;
      if (last && last[1] === position[1] && position[0] <= last[0]) return;
      this.position = position;
    }
    this.app.emit(event, payload, position);
  }

  private sendJoin(): void {
    clearTimeout(this.rejoinTimer);
    const ref = this.socket.makeRef();
    const payload: Payload = { params: this.params };
    if (this.position) payload.since = this.position;
    if (!this.socket.send([ref, ref, this.name, "join", payload])) return; // joins when it opens
    this.state = "joining";
    this.joinRef = ref;
    this.joinTimer = setTimeout(() => {
      this.socket.send([ref, this.socket.makeRef(), this.name, "leave", {}]); // a late join
      this.lost(new TopicError("timeout", "join"));
    }, this.socket.options.timeout);
  }

  private joinReplied(reply: Payload): void {
    clearTimeout(this.joinTimer);
    const body = isObject(reply.response) ? reply.response : {};
    if (reply.status !== "ok") {
      return this.close(new TopicError("refused", String(body.reason ?? "refused"), body));
    }
    const result: JoinResult = {
      response: isObject(body.response) ? body.response : {},
      rejoin: this.joinedOnce,
    };
    if (typeof body.recovered === "boolean") result.recovered = body.recovered;
    if (typeof body.missed === "number") result.missed = body.missed;
    if (isPosition(body.position) || body.position === null) result.position = body.position;
    // After a recovered resume the missed pushes follow and move the position themselves.
    if (!(this.position && result.recovered) && result.position) this.position = result.position;
    this.state = "joined";
    this.rejoins = 0;
    this.joinedOnce = true;
    const buffered = this.buffer;
    this.buffer = [];
    for (const push of buffered) this.sendPush(push);
    this.first?.resolve(result);
    this.first = null;
    this.life.emit("join", result);
  }

  private sendPush(push: Push): boolean {
    const ref = this.socket.makeRef();
    try {
      if (!this.socket.send([this.joinRef, ref, this.name, push.event, push.payload])) return false;
    } catch (error) {
      clearTimeout(push.timer); // a payload JSON cannot encode (a cycle, a BigInt)
      push.reject(new TopicError("protocol", String(error)));
      return true;
    }
    push.ref = ref;
    this.inflight.set(ref, push);
    return true;
  }

  private crashed(reason: string): void {
    this.failInflight(new TopicError("crashed", reason));
    this.lost(new TopicError("crashed", reason));
  }

  /** The join is lost, not the topic: rejoin after a backoff while the socket is open. */
  private lost(error: TopicError): void {
    clearTimeout(this.joinTimer);
    this.state = "errored";
    this.joinRef = null;
    const { backoffBase, backoffMax } = this.socket.options;
    this.rejoinTimer = setTimeout(() => this.sendJoin(), backoff(this.rejoins++, backoffBase, backoffMax));
    this.rejectFirst(error);
    this.life.emit("error", error);
  }

  private close(error: TopicError): void {
    clearTimeout(this.joinTimer);
    clearTimeout(this.rejoinTimer);
    const wasOpen = this.state !== "closed";
    this.state = "closed";
    this.joinRef = null;
    this.failInflight(error);
    for (const push of this.buffer) {
      clearTimeout(push.timer);
      push.reject(error);
    }
    this.buffer = [];
    this.rejectFirst(error);
    this.socket.remove(this);
    if (wasOpen) this.life.emit("close", error);
  }

  private rejectFirst(error: TopicError): void {
    this.first?.reject(error);
    this.first = null;
  }

  private failInflight(error: TopicError): void {
    for (const push of this.inflight.values()) {
      clearTimeout(push.timer);
      push.reject(error);
    }
    this.inflight.clear();
  }
}

/** The protocol's own events, and the `$` ones it reserves, are not the application's. */
const RESERVED = ["join", "leave", "reply", "close", "error", "presence_state", "presence_diff"];

const validEvent = (event: unknown): boolean =>
  typeof event === "string" &&
  event.length > 0 &&
  [...event].length <= 100 &&
  event[0] !== "$" &&
  !RESERVED.includes(event);

/** Nested over the 100 levels the server takes (the payload is the first). A cycle is
 * too deep too (JSON.stringify would throw on it). */
const tooDeep = (value: unknown, depth = 1): boolean =>
  typeof value === "object" &&
  value !== null &&
  !ArrayBuffer.isView(value) &&
  (depth > 100 || Object.values(value).some((v) => tooDeep(v, depth + 1)));

const isObject = (value: unknown): value is Payload =>
  typeof value === "object" && value !== null && !Array.isArray(value);
