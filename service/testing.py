"""Run a real server in a background thread for tests, the demo and notebooks.

``with running_server(config) as target:`` starts the server on ``127.0.0.1:0`` (a free port) in its own event
loop thread, yields ``"127.0.0.1:PORT"`` and stops it on exit. ``running_server_state`` yields the
:class:`~gendebias.service.server.Running` object too, for tests that look at metrics or health.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gendebias.generators import Generator
from gendebias.service.config import ServiceConfig
from gendebias.service.server import Running, start_server


@contextmanager
def running_server_state(config: ServiceConfig | None = None,
                         generators: dict[str, Generator] | None = None) -> Iterator[tuple[str, Running]]:
    config = config or ServiceConfig()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gendebias-test-server", daemon=True)
    thread.start()
    running: Running | None = None
    try:
        running = asyncio.run_coroutine_threadsafe(start_server("127.0.0.1:0", config, generators), loop).result()
        yield f"127.0.0.1:{running.port}", running
    finally:  # a server that failed to start leaves no loop thread behind either
        if running is not None:
            asyncio.run_coroutine_threadsafe(running.stop(0), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@contextmanager
def running_server(config: ServiceConfig | None = None,
                   generators: dict[str, Generator] | None = None) -> Iterator[str]:
    with running_server_state(config, generators) as (target, _):
        yield target
