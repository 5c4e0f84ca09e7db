"""BatchProgress: the state as it is, at most once per interval, never once the batch is done."""

from __future__ import annotations

from typing import Any

from worker.progress import BatchProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_updates_are_spaced_and_carry_the_state_as_it_is_then() -> None:
    sent: list[dict[str, Any]] = []
    clock = Clock()
    progress = BatchProgress(sent.append, images=5, interval_s=0.5, clock=clock)
    progress.stage("decode")  # the first goes at once
    progress.stage("detect", failed=1)  # 0 s later: held
    clock.now += 0.6
    progress.stage("clip")  # sent, with the failed image counted
    progress.stage("analyze")
    progress.finished()
    clock.now += 0.5
    progress.finished()  # sent: 3 of 5 done
    clock.now += 0.5
    progress.finished()
    clock.now += 0.5
    progress.finished()  # the last image: the result follows, so nothing is sent
    assert [(u["stage"], u["done"], u["failed"]) for u in sent] == [
        ("decode", 0, 0),
        ("clip", 1, 1),
        ("analyze", 3, 1),
        ("analyze", 4, 1),
    ]
    assert progress.state.done == 5


def test_without_a_sink_nothing_is_sent_and_the_state_still_counts() -> None:
    progress = BatchProgress(None, images=2)
    progress.stage("analyze")
    progress.finished()
    assert progress.state.done == 1
