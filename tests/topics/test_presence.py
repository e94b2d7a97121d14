"""Presence payloads on the wire and their merge on a client."""

from __future__ import annotations

from channelworks.topics.presence import diff_payload, state_payload, sync_diff, sync_state


def m(ref: str, **extra: object) -> dict[str, object]:
    return {"phx_ref": ref, **extra}


def test_the_layer_state_is_wrapped_in_metas() -> None:
    assert state_payload({"ada": [m("1")], "bob": [m("2"), m("3")]}) == {
        "ada": {"metas": [m("1")]},
        "bob": {"metas": [m("2"), m("3")]},
    }
    diff = {"type": "presence.diff", "group": "g", "joins": {"c": [m("4")]}, "leaves": {}}
    assert diff_payload(diff) == {"joins": {"c": {"metas": [m("4")]}}, "leaves": {}}


def test_a_diff_adds_joins_and_removes_leaves_by_phx_ref() -> None:
    state = sync_state({"ada": {"metas": [m("1")]}, "bob": {"metas": [m("2"), m("3")]}})
    after = sync_diff(
        state,
        {"joins": {"cy": {"metas": [m("4")]}}, "leaves": {"bob": {"metas": [m("2")]}}},
    )
    assert after == {"ada": [m("1")], "bob": [m("3")], "cy": [m("4")]}
    assert state["bob"] == [m("2"), m("3")]  # the old state is unchanged
    gone = sync_diff(after, {"joins": {}, "leaves": {"bob": {"metas": [m("3")]}}})
    assert "bob" not in gone


def test_a_repeated_diff_changes_nothing_more() -> None:
    diff = {"joins": {"ada": {"metas": [m("1", x=2)]}}, "leaves": {"bob": {"metas": [m("2")]}}}
    state = sync_state({"ada": {"metas": [m("1", x=1)]}, "bob": {"metas": [m("2")]}})
    once = sync_diff(state, diff)
    assert once == {"ada": [m("1", x=2)]}
    assert sync_diff(once, diff) == once


def test_a_leave_of_an_unknown_meta_is_ignored() -> None:
    state = sync_state({"ada": {"metas": [m("1")]}})
    assert sync_diff(state, {"leaves": {"zed": {"metas": [m("9")]}, "ada": {"metas": []}}}) == {
        "ada": [m("1")]
    }
