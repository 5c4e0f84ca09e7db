"""Stage timing in one place: a ``Profile`` per stage, read once into ``timings_ms``.

Like ultralytics' ``Profile``: ``with stages("detect"): ...`` adds the block's time to that stage;
a stage run once for a whole batch gives each image its share.
"""

from __future__ import annotations

import time
from types import TracebackType


class Profile:
    """Milliseconds spent inside its ``with`` blocks, added up."""

    def __init__(self, ms: float = 0.0) -> None:
        self.ms = ms
        self._start = 0.0

    def __enter__(self) -> Profile:
        self._start = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.ms += (time.perf_counter() - self._start) * 1000.0


class Stages:
    """The time of each stage of one image's analysis (or one job's)."""

    def __init__(self) -> None:
        self._profiles: dict[str, Profile] = {}

    def __call__(self, stage: str) -> Profile:
        """The stage's profile, to time a block with: ``with stages("rules"): ...``."""
        return self._profiles.setdefault(stage, Profile())

    def share(self, stage: str, ms: float) -> None:
        """This image's share of a stage that ran once for several images."""
        self._profiles[stage] = Profile(ms)

    def ms(self) -> dict[str, float]:
        return {stage: profile.ms for stage, profile in self._profiles.items()}
