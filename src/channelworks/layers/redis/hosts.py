"""Which Redis servers a layer talks to, and which of them holds a given key.

``hosts`` is configured as in channels_redis: a list whose items are each one *shard*:

- a URL: ``"redis://:password@127.0.0.1:6379/0"``, ``"rediss://..."``, ``"unix:///path/sock"``;
- a ``(host, port)`` pair;
- a dict of redis-py connection options (``host``, ``port``, ``db``, ``password``, ``ssl``…),
  where ``address`` may give a URL or a pair instead of ``host``/``port``;
- a dict with ``sentinels`` (a list of pairs) and ``master_name`` (and optionally
  ``sentinel_kwargs`` and connection options): the master of that set, found through
  Sentinel and followed across failovers.

The layer options ``sentinels=[(host, port)], master_name="mymaster"`` are a shorter way to
say ``hosts=[{"sentinels": ..., "master_name": ...}]``; ``cluster=True`` makes the hosts the
startup nodes of one Redis Cluster.

Rules of this file:
- with several shards, the shard of a key is chosen by rendezvous hashing of the key's
  routing name (see ``keys.py``) over the shards' identities (``HostSpec.identity``): every
  process that lists the same shards, in any order, picks the same one, and adding or
  removing a shard moves only the keys that shard wins or held;
- parsing never opens a connection; ``shard.py`` does, for one event loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_HOST = "redis://localhost:6379"

Address = tuple[str, int]


@dataclass(frozen=True)
class HostSpec:
    """One shard: a server (``url`` or ``options``), a Sentinel-managed master, or a cluster."""

    #: ``redis://`` URL, or ``None`` when ``options`` hold ``host``/``port``
    url: str | None = None
    #: redis-py connection options (``db``, ``password``, ``ssl``, timeouts…)
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Sentinel addresses; with ``master_name`` this shard is that master
    sentinels: tuple[Address, ...] = ()
    master_name: str | None = None
    sentinel_options: Mapping[str, Any] | None = None
    #: startup nodes of a Redis Cluster; when set this one spec is the whole cluster
    cluster_nodes: tuple[Address, ...] = ()

    @property
    def kind(self) -> str:
        if self.cluster_nodes:
            return "cluster"
        return "sentinel" if self.sentinels else "server"

    @property
    def identity(self) -> str:
        """A name for this shard without credentials: used for hashing and in messages."""
        if self.cluster_nodes:
            return "cluster:" + ",".join(f"{h}:{p}" for h, p in self.cluster_nodes)
        if self.sentinels:
            return f"sentinel:{self.master_name}@" + ",".join(f"{h}:{p}" for h, p in self.sentinels)
        if self.url is not None:
            parts = urlsplit(self.url)
            where = parts.hostname or parts.path
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{where}{port}{parts.path if parts.hostname else ''}"
        db = self.options.get("db", 0)
        return (
            f"redis://{self.options.get('host', 'localhost')}:{self.options.get('port', 6379)}/{db}"
        )


def _address(value: object, what: str) -> Address:
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    ):
        return (value[0], value[1])
    raise ValueError(f"{what} must be a (host, port) pair, got {value!r}")


def _host(entry: object) -> HostSpec:
    if isinstance(entry, str):
        return HostSpec(url=entry)
    if isinstance(entry, Mapping):
        options = dict(entry)
        if "sentinels" in options:
            sentinels = tuple(_address(a, "a sentinel") for a in options.pop("sentinels"))
            master = options.pop("master_name", None)
            if not isinstance(master, str) or not sentinels:
                raise ValueError("a Sentinel host needs 'sentinels' and a 'master_name' str")
            sentinel_options = options.pop("sentinel_kwargs", None)
            return HostSpec(
                options=options,
                sentinels=sentinels,
                master_name=master,
                sentinel_options=sentinel_options,
            )
        address = options.pop("address", None)
        if isinstance(address, str):
            return HostSpec(url=address, options=options)
        if address is not None:
            options["host"], options["port"] = _address(address, "'address'")
        return HostSpec(options=options)
    return HostSpec(options=dict(zip(("host", "port"), _address(entry, "a host"), strict=True)))


def parse_hosts(
    hosts: Iterable[object] | str | None = None,
    *,
    sentinels: Iterable[object] | None = None,
    master_name: str | None = None,
    sentinel_kwargs: Mapping[str, Any] | None = None,
    cluster: bool = False,
) -> list[HostSpec]:
    """The shards a layer uses, from its ``hosts`` (and Sentinel/Cluster) options."""
    if isinstance(hosts, str):
        hosts = [hosts]
    if sentinels is not None:
        if hosts is not None:
            raise ValueError("give either hosts or sentinels, not both")
        if master_name is None:
            raise ValueError("sentinels need a master_name")
        hosts = [
            {"sentinels": list(sentinels), "master_name": master_name}
            | ({"sentinel_kwargs": sentinel_kwargs} if sentinel_kwargs else {})
        ]
    elif master_name is not None:
        raise ValueError("master_name needs sentinels")
    specs = [_host(entry) for entry in (hosts if hosts is not None else [DEFAULT_HOST])]
    if not specs:
        raise ValueError("hosts must name at least one Redis server")
    if cluster:
        return [_cluster(specs)]
    identities = [spec.identity for spec in specs]
    if len(set(identities)) != len(identities):
        raise ValueError(f"hosts lists a server twice: {identities}")
    return specs


def _cluster(specs: list[HostSpec]) -> HostSpec:
    nodes = []
    options: dict[str, Any] = {}
    for spec in specs:
        if spec.sentinels:
            raise ValueError("cluster=True cannot use Sentinel hosts")
        if spec.url is not None:
            parts = urlsplit(spec.url)
            nodes.append((parts.hostname or "localhost", parts.port or 6379))
            if parts.password:
                options["password"] = parts.password
            if parts.username:
                options["username"] = parts.username
        else:
            rest = dict(spec.options)
            nodes.append((rest.pop("host", "localhost"), rest.pop("port", 6379)))
            options.update(rest)
    return HostSpec(options=options, cluster_nodes=tuple(nodes))


def pick_shard(routing_name: str, identities: Sequence[str]) -> int:
    """Index of the shard that holds keys routed by ``routing_name`` (rendezvous hashing)."""
    if len(identities) == 1:
        return 0
    name = routing_name.encode()
    weights = [
        hashlib.blake2b(identity.encode() + b"\0" + name, digest_size=8).digest()
        for identity in identities
    ]
    return weights.index(max(weights))


__all__ = ["DEFAULT_HOST", "HostSpec", "parse_hosts", "pick_shard"]
