import type { Topic } from "./topic";
import type { Payload } from "./types";

/** One member's metas: one per socket the member is on the topic with. */
export interface PresenceEntry<Meta extends Payload = Payload> {
  metas: Array<Meta & { phx_ref: string }>;
}

export type PresenceState<Meta extends Payload = Payload> = Record<string, PresenceEntry<Meta>>;

export interface PresenceDiff<Meta extends Payload = Payload> {
  joins: PresenceState<Meta>;
  leaves: PresenceState<Meta>;
}

type OnJoin<M extends Payload> = (
  key: string,
  current: PresenceEntry<M> | undefined,
  joined: PresenceEntry<M>,
) => void;
type OnLeave<M extends Payload> = (key: string, current: PresenceEntry<M>, left: PresenceEntry<M>) => void;

/**
 * Who is on a topic, kept in sync from its `presence_state` and `presence_diff` events.
 * Create it before joining. A diff that arrives before the state of the current join waits
 * for it, then applies; a state after a rejoin is compared with what was known, so `onJoin`
 * and `onLeave` tell what changed while the socket was away.
 */
export class Presence<Meta extends Payload = Payload> {
  state: PresenceState<Meta> = {};
  private pending: Array<[join: string | null, diff: PresenceDiff<Meta>]> = [];
  private syncedJoin: string | null = null;
  private joinFn: OnJoin<Meta> = () => {};
  private leaveFn: OnLeave<Meta> = () => {};
  private syncFn: () => void = () => {};

  constructor(readonly topic: Topic) {
    topic.on("presence_state", (state) => {
      this.syncedJoin = topic.joinRef;
      this.apply(diffStates(this.state, state as PresenceState<Meta>));
      // Diffs of an earlier join whose state never came describe a membership since replaced.
      for (const [join, diff] of this.pending) if (join === topic.joinRef) this.apply(diff);
      this.pending = [];
      this.syncFn();
    });
    topic.on("presence_diff", (diff) => {
      if (this.syncedJoin === null || this.syncedJoin !== topic.joinRef) {
        this.pending.push([topic.joinRef, diff as unknown as PresenceDiff<Meta>]);
        return;
      }
      this.apply(diff as unknown as PresenceDiff<Meta>);
      this.syncFn();
    });
  }

  /** `fn(key, current, joined)`: `current` is undefined for a key not there before. */
  onJoin(fn: OnJoin<Meta>): void {
    this.joinFn = fn;
  }

  /** `fn(key, current, left)`: `current` holds the metas left (none: the key is gone). */
  onLeave(fn: OnLeave<Meta>): void {
    this.leaveFn = fn;
  }

  /** After each state or diff has been applied. */
  onSync(fn: () => void): void {
    this.syncFn = fn;
  }

  /** The members, one entry per key, in `chooser(key, entry)`'s shape (default `{key, metas}`). */
  list<T = { key: string } & PresenceEntry<Meta>>(
    chooser: (key: string, entry: PresenceEntry<Meta>) => T = (key, entry) =>
      ({ key, metas: entry.metas }) as T,
  ): T[] {
    return Object.entries(this.state).map(([key, entry]) => chooser(key, entry));
  }

  // Idempotent, as the protocol asks: a join of a meta already held, or a leave of one not
  // held, changes nothing and calls no callback.
  private apply({ joins, leaves }: PresenceDiff<Meta>): void {
    for (const [key, joined] of Object.entries(joins ?? {})) {
      const current = this.state[key];
      const held = new Set(current?.metas.map((m) => m.phx_ref));
      const refs = new Set(joined.metas.map((m) => m.phx_ref));
      const kept = current ? current.metas.filter((m) => !refs.has(m.phx_ref)) : [];
      this.state[key] = { metas: [...kept, ...joined.metas] };
      if (joined.metas.some((m) => !held.has(m.phx_ref))) this.joinFn(key, current, joined);
    }
    for (const [key, left] of Object.entries(leaves ?? {})) {
      const current = this.state[key];
      if (!current) continue;
      const refs = new Set(left.metas.map((m) => m.phx_ref));
      const before = current.metas.length;
      current.metas = current.metas.filter((m) => !refs.has(m.phx_ref));
      if (current.metas.length === before) continue;
      this.leaveFn(key, current, left);
      if (current.metas.length === 0) delete this.state[key];
    }
  }
}

/** The diff that turns `from` into `to`, meta by meta (`phx_ref`). */
const diffStates = <M extends Payload>(from: PresenceState<M>, to: PresenceState<M>): PresenceDiff<M> => {
  const joins: PresenceState<M> = {};
  const leaves: PresenceState<M> = {};
  const only = (a?: PresenceEntry<M>, b?: PresenceEntry<M>) => {
    const refs = new Set(b?.metas.map((m) => m.phx_ref));
    return (a?.metas ?? []).filter((m) => !refs.has(m.phx_ref));
  };
  for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) {
    const joined = only(to[key], from[key]);
    const left = only(from[key], to[key]);
    if (joined.length) joins[key] = { metas: joined };
    if (left.length) leaves[key] = { metas: left };
  }
  return { joins, leaves };
};
