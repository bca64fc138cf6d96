"""An asyncio server run from a background thread with its own event loop, started and stopped from
synchronous code: what the embedded MQTT broker and the SFTP server share."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

# serve(ready, stop_requested): set ``ready`` once listening, then return when ``stop_requested`` is set
Serve = Callable[[concurrent.futures.Future[_T], asyncio.Event], Coroutine[Any, Any, None]]


class BackgroundLoop(Generic[_T]):
    """One ``serve`` coroutine on a fresh event loop in a daemon thread.

    ``start`` returns what ``serve`` passed to ``ready`` (a bound port, say), or raises what it
    failed with, or :class:`TimeoutError`, after stopping the thread. ``stop`` sets the stop event,
    joins the thread and forgets it; it is safe after a failed start and when nothing runs.
    """

    def __init__(self, name: str, description: str, logger: logging.Logger, stop_timeout_s: float) -> None:
        self._name = name  # of the thread
        self._description = description  # in log lines: "<description> failed"
        self._logger = logger
        self._stop_timeout_s = stop_timeout_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    @property
    def started(self) -> bool:
        """Started and not stopped since (the thread may have ended on its own)."""
        return self._thread is not None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError(f"{self._description} is not started")
        return self._loop

    def start(self, serve: Serve[_T], timeout_s: float) -> _T:
        if self._thread is not None:
            raise RuntimeError(f"{self._description} is already started")
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[_T] = concurrent.futures.Future()
        stop_requested = asyncio.Event()
        thread = threading.Thread(
            target=self._run, args=(loop, serve, ready, stop_requested), name=self._name, daemon=True
        )
        self._thread, self._loop, self._stop_requested = thread, loop, stop_requested
        thread.start()
        try:
            return ready.result(timeout=timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            # RuntimeError means the loop already ended (a failed start): there is nothing left to signal.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_requested.set)
        if thread is not None:
            thread.join(timeout=self._stop_timeout_s)
            if thread.is_alive():
                self._logger.warning("%s did not stop within %.0fs", self._description, self._stop_timeout_s)
        self._thread = self._loop = self._stop_requested = None

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        serve: Serve[_T],
        ready: concurrent.futures.Future[_T],
        stop_requested: asyncio.Event,
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve(ready, stop_requested))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                self._logger.exception("%s failed", self._description)
        finally:
            try:
                # Connections torn down by stop() can leave tasks behind; finishing them here avoids
                # "Task was destroyed but it is pending" noise when the loop closes.
                leftovers = asyncio.all_tasks(loop)
                for task in leftovers:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
