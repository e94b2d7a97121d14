"""The shipped JS client in Chromium against a live topics server (tests/client_js/app.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page

from tests.client_js.conftest import REDIS_PRESENCE, TopicsServer, needs_presence

NewPage = Callable[[], Page]

#: a socket on window, with fast reconnects, logging its states and closes
SOCKET = """() => {
  window.states = [];
  window.socket = new Channelworks.Socket("/ws/topics/", { backoffBase: 200, backoffMax: 1000 });
  socket.on("state", (state) => states.push(state));
  socket.connect();
}"""


def test_a_push_gets_its_reply_an_error_reply_or_its_timeout(new_page: NewPage) -> None:
    page = new_page()
    page.evaluate(SOCKET)
    result = page.evaluate(
        """async () => {
          const room = socket.topic("room:replies", { nick: "ada" });
          const joined = await room.join();
          const fail = (e) => ({ kind: e.kind, reason: e.reason, response: e.response });
          return {
            joined,
            echo: await room.push("echo", { n: 1, text: "é" }),
            failed: await room.push("fail").catch(fail),
            silent: await room.push("silent", {}, { timeout: 300 }).catch(fail),
            state: room.state,
          };
        }"""
    )
    joined = result["joined"]
    assert joined["response"] == {"room": "replies"}
    assert (joined["recovered"], joined["missed"], joined["rejoin"]) == (True, 0, False)
    assert result["echo"] == {"echo": {"n": 1, "text": "é"}}
    assert result["failed"] == {
        "kind": "reply",
        "reason": "not today",
        "response": {"reason": "not today"},
    }
    assert result["silent"] == {"kind": "timeout", "reason": "silent", "response": {}}
    assert result["state"] == "joined"
    assert page.evaluate("states") == ["connecting", "open"]


def test_the_msgpack_variant_carries_replies_binaries_and_positions(new_page: NewPage) -> None:
    page = new_page()
    result = page.evaluate(
        """async () => {
          const socket = new Channelworks.Socket("/ws/topics/", { format: "msgpack" });
          socket.connect();
          const room = socket.topic("room:binary", { nick: "ada" });
          const said = new Promise((resolve) => room.on("said", (...args) => resolve(args)));
          await room.join();
          const bytes = new Uint8Array([0, 255]);
          const reply = await room.push("echo", { bytes, n: -129, f: 0.5 });
          await room.push("shout", { text: "é" });
          const [payload, position] = await said;
          const echoed = reply.echo.bytes;
          return {
            binary: echoed instanceof Uint8Array ? [...echoed] : echoed,
            numbers: [reply.echo.n, reply.echo.f],
            payload,
            offset: position[0] === room.position[0] && typeof position[1] === "string",
          };
        }"""
    )
    assert result == {
        "binary": [0, 255],  # a JSON socket would have sent {"0": 0, "1": 255}
        "numbers": [-129, 0.5],
        "payload": {"text": "é"},
        "offset": True,
    }


def test_a_refused_join_rejects_with_the_reason_and_the_socket_goes_on(new_page: NewPage) -> None:
    page = new_page()
    page.evaluate(SOCKET)
    result = page.evaluate(
        """async () => {
          const vip = socket.topic("vip:lounge");
          const closes = [];
          vip.onClose((e) => closes.push(e.kind));
          const refused = await vip.join().catch((e) => ({ kind: e.kind, reason: e.reason }));
          const unknown = await socket.topic("nowhere").join().catch((e) => e.reason);
          const pushed = await vip.push("echo").catch((e) => e.kind);
          const room = await socket.topic("room:after", { nick: "ada" }).join();
          return { refused, unknown, closes, state: vip.state, pushed, room: room.response };
        }"""
    )
    assert result == {
        "refused": {"kind": "refused", "reason": "members_only"},
        "unknown": "unknown_topic",
        "closes": ["refused"],
        "state": "closed",
        "pushed": "closed",
        "room": {"room": "after"},
    }


def test_a_forbidden_socket_stops_instead_of_reconnecting(new_page: NewPage) -> None:
    page = new_page()
    page.evaluate(
        """() => {
          window.states = [];
          window.closes = [];
          window.socket = new Channelworks.Socket("/ws/private/", { backoffBase: 10 });
          socket.on("state", (state) => states.push(state));
          socket.on("close", (info) => closes.push(info));
          socket.topic("room:private").join();
          socket.connect();
        }"""
    )
    page.wait_for_function("() => socket.state === 'stopped'")
    assert page.evaluate("closes") == [
        {"code": 4403, "reason": "login required", "reconnectIn": None}
    ]
    assert page.evaluate("states") == ["connecting", "open", "stopped"]


def test_a_silent_server_is_detected_by_the_heartbeat_and_left_for_a_new_connection(
    server: TopicsServer, new_page: NewPage
) -> None:
    page = new_page()
    page.evaluate(
        """async () => {
          window.closes = [];
          window.joins = [];
          window.socket = new Channelworks.Socket("/ws/topics/", {
            heartbeatInterval: 500, timeout: 1000, backoffBase: 100, backoffMax: 500,
          });
          socket.on("close", (info) => closes.push(info.reason));
          window.room = socket.topic("room:heartbeat", { nick: "ada" });
          room.onJoin((result) => joins.push(result.rejoin));
          socket.connect();
          await room.join();
        }"""
    )
    server.pause()  # a half-open connection: nothing answers, nothing closes
    try:
        page.wait_for_function("() => closes.includes('heartbeat timeout')")
        assert page.evaluate("() => room.state") == "errored"
    finally:
        server.resume()
    page.wait_for_function("() => room.state === 'joined' && joins.length === 2")
    assert page.evaluate("joins") == [False, True]
    assert page.evaluate("() => room.push('echo', { n: 1 })") == {"echo": {"n": 1}}


PRESENCE = """async (nick) => {
  const room = socket.topic("room:presence", { nick });
  window.presence = new Channelworks.Presence(room);
  window.left = [];
  presence.onLeave((key, current) => { if (!current.metas.length) left.push(key); });
  const entry = (key, { metas }) => `${key}:${metas.length}`;
  window.members = () => presence.list(entry).sort().join(",");
  await room.join();
}"""


@needs_presence
def test_presence_across_two_browsers(new_page: NewPage) -> None:
    ada, bob = new_page(), new_page()
    for page, nick in ((ada, "ada"), (bob, "bob")):
        page.evaluate(SOCKET)
        page.evaluate(PRESENCE, nick)
    for page in (ada, bob):
        page.wait_for_function("() => members() === 'ada:1,bob:1'")

    bob_tab = bob.context.new_page()  # bob in a second tab: one key, two metas
    bob_tab.goto(bob.url)
    bob_tab.evaluate(SOCKET)
    bob_tab.evaluate(PRESENCE, "bob")
    ada.wait_for_function("() => members() === 'ada:1,bob:2'")

    bob.context.close()  # both of bob's tabs go away
    ada.wait_for_function("() => members() === 'ada:1'")
    assert ada.evaluate("left") == ["bob"]


def test_reconnect_after_a_server_restart_resumes_without_gap_or_duplicate(
    server: TopicsServer, new_page: NewPage
) -> None:
    page = new_page()
    page.evaluate(SOCKET)
    page.evaluate(
        """async () => {
          window.said = [];
          window.joins = [];
          window.room = socket.topic("room:resume", { nick: "ada" });
          window.presence = new Channelworks.Presence(room);
          room.on("said", (payload, position) => said.push([payload.n, position[0]]));
          room.onJoin((result) => joins.push(result));
          await room.join();
          await room.push("shout", { n: 1 });
          await room.push("shout", { n: 2 });
        }"""
    )
    page.wait_for_function("() => said.length === 2")

    assert server.stop() == 0
    page.wait_for_function("() => socket.state !== 'open'")
    server.broadcast("room:resume", "said", '{"n": 3}')  # missed while disconnected
    server.broadcast("room:resume", "said", '{"n": 4}')
    page.evaluate(
        """() => {
          const outcome = (p) => p.then((r) => ["ok", r], (e) => [e.kind]);
          window.offline = [  // pushed while offline: buffered, each with its own timeout
            outcome(room.push("echo", { late: true }, { timeout: 60000 })),
            outcome(room.push("echo", { late: false }, { timeout: 100 })),
          ];
        }"""
    )
    page.wait_for_function(
        "() => Promise.race([offline[1], 'pending']).then((r) => r !== 'pending')"
    )
    server.start()

    assert page.evaluate("() => Promise.all(offline)") == [
        ["ok", {"echo": {"late": True}}],
        ["timeout"],
    ]
    page.wait_for_function("() => said.length === 4 && room.state === 'joined'")
    page.evaluate("() => room.push('shout', { n: 5 })")
    page.wait_for_function("() => said.length === 5")
    said: list[list[int]] = page.evaluate("said")
    assert [n for n, _ in said] == [1, 2, 3, 4, 5]  # the missed ones in order, none twice
    offsets = [offset for _, offset in said]
    # Increasing, not consecutive: the room's presence changes take offsets of its log too.
    assert offsets == sorted(set(offsets))
    rejoin: dict[str, Any] = page.evaluate("joins[1]")
    assert (rejoin["rejoin"], rejoin["recovered"]) == (True, True)
    assert page.evaluate("() => room.position[0]") == offsets[-1]
    if REDIS_PRESENCE:  # the state after the rejoin replaced the meta of the ended connection
        metas = page.evaluate("() => presence.list()")
        assert [(entry["key"], len(entry["metas"])) for entry in metas] == [("ada", 1)]
    states: list[str] = page.evaluate("states")
    assert states[:3] == ["connecting", "open", "waiting"]
    assert states[-1] == "open"
