"""The Lua scripts of the Redis layer: each one is one round trip and runs atomically.

Rules of this file:
- a script touches only the keys passed in ``KEYS``, except ``GROUP_SEND``, which also builds
  inbox and alive keys from ``ARGV`` and is therefore used only on a single, non-cluster
  server (a sharded or cluster layer runs ``GROUP_MEMBERS`` then ``GROUP_PUSH`` instead);
- times are integer milliseconds since the epoch, passed in by the client (Redis scripts
  could read ``TIME``, but a reader compares expiries with its own clock anyway, so all
  clocks must agree within a small part of ``expiry``: run NTP);
- the entry formats are described in ``keys.py``; scripts only concatenate and parse their
  header fields, never the payload.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from channelworks.layers.redis.shard import Packed


@dataclass(frozen=True)
class Script:
    """A Lua script with its SHA1, run with EVALSHA (loaded again after NOSCRIPT)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def command(
        self, keys: tuple[str, ...], *args: str | bytes | int | Packed
    ) -> tuple[object, ...]:
        """The EVALSHA command tuple that runs this script."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


# KEYS: inbox, count, alive.  ARGV: ttl_ms, runs, then per run: channel, capacity, entries
# (how many), then the entries of every run, run after run.
# The sends to one process made in one event-loop iteration (layer.py), a run per channel,
# each in call order: a run takes what its channel has room for, first come first served; the
# accepted entries go in one RPUSH, run after run. Entries travel as arguments once and, when
# every one is accepted, straight from ARGV to the RPUSH: Lua touches them only on a refusal.
# -> -1 the owner process is not alive (nothing pushed, no TTL touched), else a string with one
#    character per entry, in the order sent: '1' accepted, '0' its channel is full
SEND_LOCAL = Script(
    "send_local",
    """
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
local runs = tonumber(ARGV[2])
local first = 3 + 3 * runs
local outcome, accepted, at = {}, nil, first
for h = 3, first - 1, 3 do
  local channel, k = ARGV[h], tonumber(ARGV[h + 2])
  local room = tonumber(ARGV[h + 1]) - tonumber(redis.call('HGET', KEYS[2], channel) or '0')
  local take = k
  if room < k then take = math.max(room, 0) end
  if take > 0 then redis.call('HINCRBY', KEYS[2], channel, take) end
  if take < k and accepted == nil then
    accepted = {}
    for i = first, at - 1 do accepted[#accepted + 1] = ARGV[i] end
  end
  if accepted ~= nil then
    for i = at, at + take - 1 do accepted[#accepted + 1] = ARGV[i] end
  end
  outcome[#outcome + 1] = string.rep('1', take) .. string.rep('0', k - take)
  at = at + k
end
local source, last = ARGV, #ARGV
if accepted ~= nil then source, first, last = accepted, 1, #accepted end
if last >= first then
  for i = first, last, 1000 do
    redis.call('RPUSH', KEYS[1], unpack(source, i, math.min(i + 999, last)))
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return table.concat(outcome)
""",
)

# KEYS: channel list.  ARGV: capacity, entry, ttl_ms, now_ms.
# -> {1 accepted or 0 full, expired entries dropped from the head to make room}
SEND_NORMAL = Script(
    "send_normal",
    """
local cap = tonumber(ARGV[1])
local dropped = 0
if redis.call('LLEN', KEYS[1]) >= cap then
  local now = tonumber(ARGV[4])
  while true do
    local head = redis.call('LINDEX', KEYS[1], 0)
    if not head then break end
    local expires = tonumber(string.match(head, '^(%d+)'))
    if expires == nil or expires > now then break end
    redis.call('LPOP', KEYS[1])
    dropped = dropped + 1
  end
  if redis.call('LLEN', KEYS[1]) >= cap then return {0, dropped} end
end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, dropped}
""",
)

# The inbox reader's reliable read (reader.py): entries stay at the head of the inbox until
# the reader has them in the process. TAKE is a plain read of the head (no script: a script
# would copy every entry into Lua and out again); each round trip starts with ACK, which
# trims the batch handed out last once it is in the process and numbers the batch this round
# trip hands out (``#batch`` in the count hash). It trims only if that batch is still the one
# handed out (``#batch`` says so, or is gone with a flushed or expired count hash) and the
# inbox still starts with it (its last entry's header is where it was: a flush or expiry
# that deleted the inbox, filled anew since, is never trimmed). An ACK sent again after a
# lost reply finds the next number there and trims nothing, whatever the entries hold (a
# push retried after a broken connection can repeat an entry); a batch whose reply was lost
# is still at the head, and the next TAKE hands it out again. Nothing Redis handed out is
# lost with a reply on the wire, nothing is delivered twice by the reader.
# Fields of the count hash that start with '#' are the reader's ('#' is never in a channel name).


def wait_commands(inbox: str, seconds: float) -> list[tuple[object, ...]]:
    """Wait up to ``seconds`` for the inbox not to be empty: moving its head onto its own head
    changes nothing, and blocks while there is none."""
    return [("BLMOVE", inbox, inbox, "LEFT", "LEFT", seconds)]


def take_commands(inbox: str, n: int) -> list[tuple[object, ...]]:
    """TAKE: up to ``n`` entries from the head of the inbox (the last reply: oldest first)."""
    return [("LRANGE", inbox, 0, n - 1)]


# KEYS: count, inbox.  ARGV: the number of the batch handed out last ('' for none), its size
# (0: nothing to trim), the header line of its last entry (with its newline), the number of
# the batch this round trip hands out, decrement id, ttl_ms, channel, n...
# Trims the batch handed out last if it is still the one at the head (see above); numbers the
# next batch; gives back the capacity of ``n`` taken entries per channel unless decrement id
# was applied already (ids only grow). Runs when Redis is out of memory (it frees; the few
# bytes it writes are the reader's bookkeeping). -> 1 if it trimmed, else 0
ACK = Script(
    "ack",
    """#!lua flags=allow-oom
local tag = redis.call('HGET', KEYS[1], '#batch')
local size, trimmed = tonumber(ARGV[2]), 0
if size > 0 and (tag == false or tag == ARGV[1]) then
  local last = redis.call('LINDEX', KEYS[2], size - 1)
  if last and string.sub(last, 1, #ARGV[3]) == ARGV[3] then
    redis.call('LTRIM', KEYS[2], size, -1)
    trimmed = 1
  end
end
if tag ~= ARGV[4] then
  redis.call('HSET', KEYS[1], '#batch', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
if #ARGV > 6 and tonumber(redis.call('HGET', KEYS[1], '#dec') or '0') < tonumber(ARGV[5]) then
  for i = 7, #ARGV, 2 do
    if redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1])) <= 0 then
      redis.call('HDEL', KEYS[1], ARGV[i])
    end
  end
  redis.call('HSET', KEYS[1], '#dec', ARGV[5])
  if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
end
return trimmed
""",
)

# KEYS: group.  ARGV: ttl_ms, 'GT', score, member, score, member...
# ZADD GT (adds missing members, never lowers a score) and keep the key's TTL at least ttl_ms.
GROUP_ADD = Script(
    "group_add",
    """
local ttl = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', unpack(ARGV, 3))
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 0
""",
)

# The epoch of a server's data (single server or Sentinel master; keys.py ``P:epoch``): a
# string ``<id> <hold_until_ms>`` that lives as long as processes use the prefix. A server
# that restarted empty (or failed over to a replica that lost it, or was flushed by hand)
# no longer has it, so a process that knew an id finds it missing or changed: Redis lost
# its data. The first process to find it missing makes a new one and, if it knew the old one,
# opens a *restore window*: group sends wait (GROUP_SEND refuses to run) until
# ``hold_until_ms`` (Redis' own clock, ``TIME``), so every live process can restore its
# liveness and memberships from its own state before group sends look for members. A process
# that had never seen an epoch (it started just now) makes one without a window; an old
# process that then finds that one opens the window it lacked.
# epoch(key, known id or '', candidate id, window_ms, ttl_ms, renew) -> current value, now_ms
_EPOCH = """
local function epoch(key, known, candidate, window, ttl, renew)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local cur = redis.call('GET', key)
  if not cur then
    local hold = 0
    if known ~= '' then hold = now + tonumber(window) end
    cur = candidate .. '.' .. t[1] .. t[2] .. ' ' .. hold
    redis.call('SET', key, cur, 'PX', ttl)
  else
    local id, hold = string.match(cur, '^(%S+) (%d+)$')
    if known ~= '' and id ~= nil and id ~= known and hold == '0' then
      cur = id .. ' ' .. (now + tonumber(window))
      redis.call('SET', key, cur, 'PX', ttl)
    elseif renew then
      redis.call('PEXPIRE', key, ttl)
    end
  end
  return cur, now
end
local function held(cur, known, now)
  local id, hold = string.match(cur, '^(%S+) (%d+)$')
  if id == nil then return false end
  return (known ~= '' and id ~= known) or tonumber(hold) > now
end
"""

# KEYS: epoch.  ARGV: known id ('' for none), candidate id, window_ms, ttl_ms.
# Makes the epoch if it is missing (see above), renews its TTL. -> {value, now_ms}
# Runs when Redis is over ``maxmemory`` (its key is a few bytes; the reader needs it).
EPOCH = Script(
    "epoch",
    "#!lua flags=allow-oom\n"
    + _EPOCH
    + """
local cur, now = epoch(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], true)
return {cur, now}
""",
)

_MEMBERS = """
local now = ARGV[1]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], '(' .. now, '+inf', 'BYSCORE')
"""

# KEYS: group [, epoch].  ARGV: now_ms [, known epoch id, candidate id, window_ms, ttl_ms].
# -> live members (lapsed ones are removed first); with the epoch (a sharded layer, not a
# cluster), first the epoch as in GROUP_SEND: {-1, epoch value, now_ms} if held
GROUP_MEMBERS = Script(
    "group_members",
    _EPOCH
    + """
if #KEYS == 2 then
  local cur, tnow = epoch(KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5], false)
  if held(cur, ARGV[2], tnow) then return {-1, cur, tnow} end
end
"""
    + _MEMBERS
    + "return members\n",
)

# KEYS: inbox, alive.  ARGV: entry, ttl_ms.  -> 1 pushed, 0 the process is not alive
GROUP_PUSH = Script(
    "group_push",
    """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
""",
)

# Single server only (builds keys from ARGV).  KEYS: group, epoch.
# ARGV: now_ms, prefix, header ("<expires_ms> <origin> <group>"), payload, ttl_ms, own pid,
# pid whose own members the caller delivered itself ('' for none), the epoch id the caller
# knows ('' for none), candidate epoch id, restore window ms, epoch ttl ms.
# First the epoch (see EPOCH): if Redis lost its data since the caller last saw it, or a
# restore window is open, nothing is pushed or removed: -> {-1, epoch value, now_ms}.
# A group's members are ``@<pid>`` (process pid has members of its own, which it knows) and
# member channels added by a process that does not own them. Pushes one entry per live
# process: ``g`` (its own members and the channels named) or, to the process the caller
# delivered to itself, ``e`` (only the channels named); removes members of dead processes.
# -> {members skipped (and removed) because their process is not alive, 1 if the caller's own
#     inbox got an entry else 0, normal (no '!') member channels, left to the caller}
GROUP_SEND = Script(
    "group_send",
    _EPOCH
    + """
local cur, tnow = epoch(KEYS[2], ARGV[8], ARGV[9], ARGV[10], ARGV[11], false)
if held(cur, ARGV[8], tnow) then return {-1, cur, tnow} end
"""
    + _MEMBERS
    + """
local prefix, header, payload, ttl, own, skip = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local by_process, whole, order, result = {}, {}, {}, {0, 0}
for _, member in ipairs(members) do
  local pid, channel
  if string.byte(member, 1) == 64 then
    pid = string.sub(member, 2)
  else
    local head = string.match(member, '^([^!]*)!')
    if head then
      pid = string.match(head, '([^.]*)$')
      channel = member
    end
  end
  if pid then
    local list = by_process[pid]
    if not list then
      list = {}
      by_process[pid] = list
      order[#order + 1] = pid
    end
    if channel then list[#list + 1] = channel else whole[pid] = true end
  else
    result[#result + 1] = member
  end
end
for _, pid in ipairs(order) do
  local list = by_process[pid]
  local kind = 'g '
  if pid == skip then kind = 'e ' end
  if kind == 'e ' and #list == 0 then
    -- the caller delivered to this process itself
  elseif redis.call('EXISTS', prefix .. ':alive:{' .. pid .. '}') == 1 then
    local inbox = prefix .. ':inbox:{' .. pid .. '}'
    local text = kind .. header
    if #list > 0 then text = text .. ' ' .. table.concat(list, ' ') end
    redis.call('RPUSH', inbox, text .. '\\n' .. payload)
    redis.call('PEXPIRE', inbox, ttl)
    if pid == own then result[2] = 1 end
  else
    if whole[pid] then
      list[#list + 1] = '@' .. pid
    end
    result[1] = result[1] + #list
    for i = 1, #list, 1000 do
      redis.call('ZREM', KEYS[1], unpack(list, i, math.min(i + 999, #list)))
    end
  end
end
return result
""",
)

#: where the epoch id the caller knows sits in a GROUP_SEND command (``rearm``)
_KNOWN_AT = 3 + 2 + 7


# A group's history (keys.py ``history``): a stream of entries ``<offset>-0 -> {m: payload}``
# beside a hash ``meta`` = {epoch, top}. Offsets are ``top`` + 1, given in the same script as
# the XADD, so one log never has two entries with one offset nor skips one. A missing meta
# means the log was never made or was lost (TTL, flush, a Redis restarted empty): it is made
# afresh with the caller's candidate epoch, and the stream, if any survived, is dropped with
# it, so an old position is never read as a position in the new log.
_HISTORY_META = """
local function meta(stream, key, candidate, ttl)
  local m = redis.call('HMGET', key, 'epoch', 'top')
  if m[1] then return m[1], tonumber(m[2]) end
  redis.call('DEL', stream)
  redis.call('HSET', key, 'epoch', candidate, 'top', 0)
  redis.call('PEXPIRE', key, ttl)
  return candidate, 0
end
"""

# KEYS: stream, meta.  ARGV: candidate epoch, size, ttl_ms, payload.
# Appends the payload (trimmed to about ``size`` entries: MAXLEN ~ keeps at least ``size``),
# renews both TTLs. -> {offset, epoch}
HISTORY_APPEND = Script(
    "history_append",
    _HISTORY_META
    + """
local epoch = meta(KEYS[1], KEYS[2], ARGV[1], ARGV[3])
local offset = redis.call('HINCRBY', KEYS[2], 'top', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'm', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {offset, epoch}
""",
)

# KEYS: stream, meta.  ARGV: candidate epoch, ttl_ms, since epoch ('' for none), since offset
# (-1 for none), limit.
# -> {epoch, top, oldest offset (0 if the stream is empty), entries}: with a since position of
# this epoch, the entries after it (at most ``limit``); with none, the last ``limit``; else
# none (the caller says Unrecoverable). Entries are {id, {'m', payload}}.
HISTORY_READ = Script(
    "history_read",
    _HISTORY_META
    + """
local epoch, top = meta(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
local oldest = 0
if #first > 0 then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
local since, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local entries = {}
if limit > 0 then
  if since < 0 then
    entries = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', limit)
  elseif ARGV[3] == epoch and since < top and top - since <= limit then
    entries = redis.call('XRANGE', KEYS[1], (since + 1) .. '-0', '+', 'COUNT', limit)
  end
end
return {epoch, top, oldest, entries}
""",
)


ALL = (
    SEND_LOCAL,
    SEND_NORMAL,
    ACK,
    EPOCH,
    GROUP_ADD,
    GROUP_MEMBERS,
    GROUP_PUSH,
    GROUP_SEND,
    HISTORY_APPEND,
    HISTORY_READ,
)


def rearm(command: tuple[object, ...], known: str) -> tuple[object, ...]:
    """The GROUP_SEND ``command`` with ``known`` as the epoch id its caller knows (a group
    send queued before this process learnt a new epoch is sent with the new one)."""
    if command[_KNOWN_AT] == known:
        return command
    return (*command[:_KNOWN_AT], known, *command[_KNOWN_AT + 1 :])


def held(reply: object) -> bool:
    """Whether a GROUP_SEND ``reply`` says it waits for the epoch (nothing was pushed)."""
    return isinstance(reply, list) and bool(reply) and reply[0] == -1


__all__ = [
    "ACK",
    "ALL",
    "EPOCH",
    "GROUP_ADD",
    "GROUP_MEMBERS",
    "GROUP_PUSH",
    "GROUP_SEND",
    "HISTORY_APPEND",
    "HISTORY_READ",
    "SEND_LOCAL",
    "SEND_NORMAL",
    "Script",
    "held",
    "rearm",
    "take_commands",
    "wait_commands",
]
