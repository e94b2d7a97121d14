"""``liveblog``: the live blog's topic on the site's topics socket, open to everyone.

``signals.py`` broadcasts ``created``/``updated`` (``{"entry": ...}``) and ``deleted``
(``{"id": ...}``) for every save or delete of an entry, with history: a page joins from the
position its view read (``views.entry_list``) and rejoins from the last one it got, so an
edit made meanwhile arrives then. When the log cannot continue from there (``recovered:
false``: a restarted in-memory layer, too much missed) the page pushes ``entries`` and gets
every entry (``{"entries": [...]}``, newest first) to match.
"""

from __future__ import annotations

from typing import Any

from channelworks.db import database_sync_to_async
from channelworks.demo.blog.models import Entry
from channelworks.topics import Reply, Topic

TOPIC = "liveblog"


@database_sync_to_async
def all_entries() -> list[dict[str, Any]]:
    return [entry.as_event() for entry in Entry.objects.all()]


class LiveblogTopic(Topic):
    pattern = TOPIC
    history = {"size": 100, "ttl": 3600}  # noqa: RUF012  (Topic declares it a ClassVar)

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        if event == "entries":
            return {"entries": await all_entries()}
        return await super().handle_in(event, payload)
