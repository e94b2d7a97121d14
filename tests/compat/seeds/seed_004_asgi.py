# mypy: ignore-errors
"""Seed 004 (chat service walkthrough), ``프로젝트/asgi.py``.

What had to change from the notes, and why:
- the ``http`` branch is ``django_asgi_application``, a tiny ASGI callable, instead of
  ``get_asgi_application()``: that call runs ``django.setup()``, which needs configured Django
  settings, and configuring settings in the test process is global and irreversible (the rest
  of the suite tests the core without settings). The ``os.environ.setdefault(...)`` line goes
  with it (in the notes it sets ``DJANGO_SETTING_MODULE``, a misspelling Django ignores);
- the notes assign ``django_asgi_applicatioin`` but route ``django_asgi_application``
  (a NameError); one name is used;
- ``import chat.routing`` became a relative import of ``seed_004_routing`` (the seed's
  ``chat/routing.py``), used as ``chat_routing``;
- line breaks after comments restored (lost in copying).
"""

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter

# from django.core.asgi import get_asgi_application
# os.environ.setdefault("DJANGO_SETTING_MODULE", "프로젝트.settings")


# 프로젝트 초기화 과정을 수행 (stands in for get_asgi_application(): see the docstring)
async def django_asgi_application(scope, receive, send):
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello from Django"})


from . import seed_004_routing as chat_routing  # noqa: E402

application = ProtocolTypeRouter(  # ← 1단계) 프로토콜 타입에 의한 라우팅
    {
        # http 요청일 때 처리
        "http": django_asgi_application,
        # websocket 요청일 때 처리
        "websocket": URLRouter(  # ← 2.1단계) 요청 URL에 의한 라우팅
            chat_routing.websocket_urlpatterns
        ),
        # worker 요청일 때 처리
        "channel": ChannelNameRouter(
            chat_routing.worker_mapping  # ← 2.2단계) 채널명에 의한 라우팅
            # | other_workers
        ),
    }
)
