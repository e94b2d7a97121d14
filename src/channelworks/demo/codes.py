"""WebSocket close codes the demo's consumers use; the browser code knows them too.

4000-4999 are the application's own range (RFC 6455). The browser does not reconnect after
one of these: the answer would be the same.
"""

#: the socket needs a logged-in user and the session has none
LOGIN_REQUIRED = 4401
#: the user may not see what the socket is about (a private room)
FORBIDDEN = 4403
#: what the socket is about does not exist (no such room)
NOT_FOUND = 4404
