export { backoff } from "./backoff";
export { TopicError, type TopicErrorKind } from "./errors";
export {
  Presence,
  type PresenceDiff,
  type PresenceEntry,
  type PresenceState,
} from "./presence";
export {
  CLIENT_TIMEOUT,
  type CloseInfo,
  Socket,
  type SocketEvents,
  type SocketOptions,
  type SocketState,
} from "./socket";
export { type PushOptions, Topic, type TopicEvents, type TopicState } from "./topic";
export type { Frame, JoinResult, Payload, Position, WebSocketConstructor, WebSocketLike } from "./types";
