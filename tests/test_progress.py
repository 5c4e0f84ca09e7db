"""BatchProgress: stage changes always sent, finished images at most once per interval."""

from __future__ import annotations

from typing import Any

from worker.progress import BatchProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_finished_images_are_throttled_but_stages_are_not() -> None:
    sent: list[dict[str, Any]] = []
    clock = Clock()
    progress = BatchProgress(sent.append, images=5, interval_s=0.5, clock=clock)
    progress.stage("decode")
    progress.stage("analyze", failed=1)
    progress.finished()  # 0 s after the last update: held back
    clock.now += 0.6
    progress.finished()  # sent, with everything finished so far
    clock.now += 0.1
    progress.finished()  # held back
    assert [(u["stage"], u["done"], u["failed"]) for u in sent] == [
        ("decode", 0, 0),
        ("analyze", 1, 1),
        ("analyze", 3, 1),
    ]
    assert progress.state.done == 4


def test_without_a_sink_nothing_is_sent_and_the_state_still_counts() -> None:
    progress = BatchProgress(None, images=2)
    progress.stage("analyze")
    progress.finished()
    assert progress.state.done == 1
