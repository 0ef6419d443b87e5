"""A real ``mltrail server`` app on 127.0.0.1 in a background thread, for tests and benchmarks.

Uvicorn serves :func:`mltrail.server.app.create_app` on an ephemeral port, so clients go
through real sockets, real HTTP parsing and the real auth middleware; with ``ssl_certfile`` and
``ssl_keyfile`` (PEM) it serves HTTPS and ``url`` is ``https://127.0.0.1:PORT``.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """``with ThreadedServer(store_uri, artifacts_dir) as srv: srv.url, srv.token("write")``."""

    def __init__(
        self,
        store: str,
        artifacts: str,
        *,
        auth: bool = True,
        port: int = 0,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        presign_s: int = 0,
    ) -> None:
        import uvicorn

        from mltrail.server.app import KEEP_ALIVE_S, ServerConfig, create_app

        app_config = ServerConfig(store=store, artifacts=artifacts, auth=auth, presign_s=presign_s)
        self.app = create_app(app_config)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = int(self._sock.getsockname()[1])
        self.url = f"{'https' if ssl_certfile else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            timeout_keep_alive=KEEP_ALIVE_S,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def token(self, scope: str = "admin", project: str | None = None) -> str:
        """A new token of ``scope`` from the server's own token store."""
        _, plaintext = self.app.state.store.tokens().create(scope, project=project)
        return str(plaintext)

    def start(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
        store: Any = self.app.state.store
        store.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
