import type { Payload } from "./types";

/**
 * Why a join, a push or a leave did not succeed:
 * - `"refused"`: the server refused the join (`reason` is its reason, e.g. `"unauthorized"`);
 * - `"reply"`: the server answered a push with status `"error"` (`response` is its response);
 * - `"timeout"`: no answer within the timeout;
 * - `"disconnected"`: the connection dropped after the push was sent (its outcome is unknown);
 * - `"overflow"`: the topic's buffer of pushes made while offline is full;
 * - `"closed"`: the topic is not joined (never joined, left, or closed by the server);
 * - `"crashed"`: the server topic's handler crashed; the topic rejoins by itself;
 * - `"protocol"`: a push the server would refuse (an empty, too long or reserved event name, a
 *   payload that is not a JSON object), or a frame from the server this client cannot read.
 */
export type TopicErrorKind =
  | "refused"
  | "reply"
  | "timeout"
  | "disconnected"
  | "overflow"
  | "closed"
  | "crashed"
  | "protocol";

/** The one error class of the client: `kind` says what happened, `reason` the server's word. */
export class TopicError extends Error {
  constructor(
    readonly kind: TopicErrorKind,
    readonly reason: string,
    readonly response: Payload = {},
  ) {
    super(`${kind}: ${reason}`);
    this.name = "TopicError";
  }
}
