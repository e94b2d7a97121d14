// The wire types of protocol v1 (docs/protocol.md). Everything here mirrors that page.

/** A JSON object: the payload of every frame. */
export type Payload = Record<string, unknown>;

/** Where a push stands in its topic's history: `[offset, epoch]`. */
export type Position = [offset: number, epoch: string];

/** `[join_ref, ref, topic, event, payload]`, with `position` on pushes of topics with history. */
export type Frame =
  | [joinRef: string | null, ref: string | null, topic: string, event: string, payload: Payload]
  | [
      joinRef: string | null,
      ref: string | null,
      topic: string,
      event: string,
      payload: Payload,
      position: Position,
    ];

/** What a topic's successful join tells the application. */
export interface JoinResult {
  /** What the server topic's `join` returned (`{}` by default). */
  response: Payload;
  /**
   * Only for topics that keep history. `false` after a rejoin means the messages since the
   * last position are gone: reload the state the topic feeds.
   */
  recovered?: boolean;
  /** How many missed messages follow this join (they arrive as ordinary events). */
  missed?: number;
  /** The topic's position when it was joined. */
  position?: Position | null;
  /** True when this join is a rejoin (after a reconnect or a topic error). */
  rejoin: boolean;
}

/** The subset of the browser's WebSocket the client uses (tests pass a fake one). */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server chose. */
  readonly protocol: string;
  binaryType: string;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export const isPosition = (value: unknown): value is Position =>
  Array.isArray(value) &&
  value.length === 2 &&
  Number.isInteger(value[0]) &&
  typeof value[1] === "string";
