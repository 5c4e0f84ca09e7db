"""The one thread that uses the models, for the life of the process.

Measured here (2 cores, torch's CPU build): YOLOv8 runs ~1.5x slower on a thread other than the
one that loaded it and ran it first, and as fast as ever when one thread does it all. So the
models are loaded, warmed up and run on this thread alone: ``run(function)`` hands it work and
waits for the answer. The batcher (worker/batcher) drains its own requests from here as they come.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

Result = TypeVar("Result")


class Work(Protocol):
    """Something for the model thread to do; it may take more work from ``thread`` as it goes."""

    def do(self, thread: ModelThread) -> None: ...


class _Call:
    def __init__(self, function: Callable[[], Any]) -> None:
        self.function = function
        self.answer: Future[Any] = Future()

    def do(self, thread: ModelThread) -> None:
        try:
            self.answer.set_result(self.function())
        except BaseException as error:
            self.answer.set_exception(error)


class ModelThread:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Work] = queue.SimpleQueue()
        self._later: list[Work] = []  # taken while gathering, not part of that batch
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def run(self, function: Callable[[], Result]) -> Result:
        """``function()`` on the model thread (at once when called from it)."""
        if self.is_current():
            return function()
        call = _Call(function)
        self.submit(call)
        return call.answer.result()

    def submit(self, work: Work) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="models", daemon=True)
                self._thread.start()
        self._queue.put(work)

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def take(self, timeout: float | None) -> Work | None:
        """The next piece of work (for a batch being gathered), None when none came in time."""
        try:
            return self._queue.get_nowait() if timeout is None else self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def put_back(self, work: Work) -> None:
        """Work taken while gathering that belongs to no batch: done next, in order."""
        self._later.append(work)

    def _serve(self) -> None:
        while True:
            work = self._later.pop(0) if self._later else self._queue.get()
            work.do(self)


MODEL_THREAD = ModelThread()
