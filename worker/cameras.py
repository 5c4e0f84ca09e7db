"""Camera profiles (SPEC 10): how a fixed camera sees its table, kept by name in the results
store beside the rule sets and applied to the jobs that name it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, TypeVar

from positioning.scene import Scene
from storage.base import RecordStore
from worker.errors import JobError
from worker.schemas import AnalyzeInput, Calibration, EvaluateInput, NormalisedPoint

Request = TypeVar("Request", AnalyzeInput, EvaluateInput)


@dataclass(frozen=True)
class CameraUse:
    """The profile a job used: its name and version (they key the cache), and whether its
    calibration measured the scene (then ``scale.source`` is ``camera:<name>``)."""

    name: str
    version: int
    calibrated: bool

    def mark(self, scene: Scene) -> Scene:
        if not self.calibrated:
            return scene
        return replace(scene, scale=replace(scene.scale, source=f"camera:{self.name}"))


class CameraBook:
    """Named camera profiles in the results store, read on every job that names one (as rule
    sets are: a cached copy could measure with a profile another worker has just replaced)."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def put(
        self,
        name: str,
        description: str,
        calibration: Calibration | None,
        surface: list[NormalisedPoint] | None,
    ) -> dict[str, Any]:
        fields = {
            "description": description,
            "calibration": None
            if calibration is None
            else calibration.model_dump(exclude_none=True),
            "surface": None if surface is None else [list(p) for p in surface],
        }
        return self.records.put_named("cameras", name, fields)

    def get(self, name: str) -> dict[str, Any]:
        try:
            stored = self.records.get_named("cameras", name)
        except Exception:
            raise JobError(
                "internal_error",
                f"camera: the results store is not answering, so {name[:64]!r} cannot be read; "
                "try again, or send the calibration in the job",
            ) from None
        if stored is None:
            raise JobError("not_found", f"camera: no camera profile named {name[:64]!r}")
        return stored

    def list(self) -> list[dict[str, Any]]:
        return self.records.list_named("cameras")

    def delete(self, name: str) -> dict[str, Any]:
        if self.records.delete_named("cameras", name):
            return {"name": name, "deleted": True}
        raise JobError("not_found", f"name: no camera profile named {name[:64]!r}")

    def apply(self, request: Request) -> tuple[Request, CameraUse | None]:
        """The job with its camera's calibration and surface where it gives none of its own."""
        if request.camera is None:
            return request, None
        stored = self.get(request.camera)
        update: dict[str, Any] = {}
        if request.calibration is None and stored.get("calibration"):
            update["calibration"] = Calibration.model_validate(stored["calibration"])
        if request.surface is None and stored.get("surface"):
            update["surface"] = [tuple(p) for p in stored["surface"]]
        use = CameraUse(request.camera, int(stored["version"]), "calibration" in update)
        return request.model_copy(update=update), use
