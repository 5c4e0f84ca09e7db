"""Pydantic models of every job input and result shape: SPEC sections 2 and 3, in code.

Inputs forbid unknown keys (a typo is an error, not a silent default). Results forbid NaN and
infinity, so whatever is returned survives ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

IMAGE_FIELDS = ("image", "image_url", "image_key")
ITEM_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class Output(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, populate_by_name=True)


# ---------------------------------------------------------------- job inputs (SPEC 2)


class AnalyzeOptions(StrictInput):
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.45, ge=0.0, le=1.0)
    imgsz: int = Field(640, ge=32, le=4096)
    max_det: int = Field(100, ge=1, le=1000)
    clip: bool = True
    annotate: bool = True
    store: bool = True
    cache: bool = True
    return_embedding: bool = False


class ReferenceObject(StrictInput):
    class_name: str = Field(alias="class", min_length=1)
    width_mm: float = Field(gt=0)


class Calibration(StrictInput):
    mm_per_px: float | None = Field(None, gt=0)
    reference: ReferenceObject | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Calibration:
        if (self.mm_per_px is None) == (self.reference is None):
            raise ValueError("give exactly one of 'mm_per_px' or 'reference'")
        return self


# (x, y) in 0..1 of the image width and height; the range is checked by AnalyzeInput.
NormalisedPoint = tuple[float, float]


class ImageSource(StrictInput):
    image: str | None = None
    image_url: str | None = None
    image_key: str | None = None

    def given_sources(self) -> list[str]:
        return [name for name in IMAGE_FIELDS if getattr(self, name) is not None]


class BatchItem(ImageSource):
    id: str | None = Field(None, pattern=ITEM_ID_PATTERN)

    @model_validator(mode="after")
    def _one_source(self) -> BatchItem:
        if len(self.given_sources()) != 1:
            raise ValueError("give exactly one of 'image', 'image_url' or 'image_key'")
        return self


class AnalyzeInput(ImageSource):
    action: Literal["analyze"] = "analyze"
    images: list[BatchItem] | None = Field(None, min_length=1)
    rules: list[str | dict[str, Any]] | None = None
    rule_set: str | None = Field(None, min_length=1)
    calibration: Calibration | None = None
    surface: list[NormalisedPoint] | None = Field(None, min_length=3)
    options: AnalyzeOptions = Field(default_factory=AnalyzeOptions)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> AnalyzeInput:
        given = self.given_sources() + (["images"] if self.images is not None else [])
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(
                f"give exactly one of 'image', 'image_url', 'image_key' or 'images' ({found})"
            )
        if self.surface is not None and not all(
            0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in self.surface
        ):
            raise ValueError("surface: points are normalised [x, y] pairs between 0 and 1")
        if self.images is not None:
            ids = [item.id or str(index) for index, item in enumerate(self.images)]
            if len(set(ids)) != len(ids):
                raise ValueError("images: item ids must be unique")
            for item, item_id in zip(self.images, ids, strict=True):
                item.id = item_id
        return self


class HealthInput(StrictInput):
    action: Literal["health"]


# ---------------------------------------------------------------- analysis result (SPEC 3)


class ImageInfo(Output):
    sha256: str
    width: int
    height: int
    format: str
    source: Literal["base64", "url", "key"]
    key: str | None


class ModelOut(Output):
    name: str
    sha256: str
    demo: bool


class DetectorOut(ModelOut):
    classes: list[str]


class ModelsOut(Output):
    detector: DetectorOut
    clip: ModelOut | None
    device: str
    dtype: str


class DetectionOut(Output):
    id: str
    class_name: str = Field(serialization_alias="class")
    class_id: int
    confidence: float
    box: list[float]
    box_norm: list[float]


class ScaleOut(Output):
    mm_per_px: float | None
    source: str
    approximate: bool


class SurfaceOut(Output):
    box: list[float]
    polygon_norm: list[list[float]]
    source: str


class Distance(Output):
    px: float
    mm: float | None


class NeighbourOut(Output):
    detection_id: str
    class_name: str = Field(serialization_alias="class")
    gap_px: float
    gap_mm: float | None


class MugOut(Output):
    id: str
    detection_id: str
    confidence: float
    mug_score: float | None
    center: list[float]
    center_norm: list[float]
    position_label: str
    edge_distance: Distance
    nearest: list[NeighbourOut]


class SceneOut(Output):
    labels: dict[str, float]


class Measured(Output):
    value: float
    unit: str


class Required(Output):
    op: str
    value: float | list[float]
    unit: str


class Move(Output):
    dx_px: float
    dy_px: float
    dx_mm: float | None
    dy_mm: float | None
    distance_px: float
    distance_mm: float | None
    direction: str


class RuleResultOut(Output):
    rule_id: str
    type: str
    text: str | None
    severity: Literal["info", "warning", "critical"]
    mug_id: str | None
    status: Literal["pass", "fail", "unknown"]
    measured: Measured | None
    required: Required
    message: str
    adjustment: Move | None


class OptimalPosition(Output):
    mug_id: str
    feasible: bool
    center: list[float] | None
    move: Move | None


class AdjustmentNeeded(Output):
    mug_id: str
    type: Literal["move"] = "move"
    direction: str
    distance_px: float
    distance_mm: float | None
    reason: str


class PositioningOut(Output):
    compliant: bool
    safety_score: float
    optimal_positions: list[OptimalPosition]
    adjustments_needed: list[AdjustmentNeeded]


class FeedbackOut(Output):
    summary: str
    recommendations: list[str]


class ArtifactsOut(Output):
    original_key: str | None
    annotated_key: str | None
    annotated_url: str | None


CacheState = Literal["hit", "miss", "stored", "disabled", "unavailable"]


class PersistedOut(Output):
    record: bool
    objects: bool
    cache: CacheState


class TimingsOut(Output):
    decode: float = 0.0
    detect: float = 0.0
    clip: float = 0.0
    analyze: float = 0.0
    rules: float = 0.0
    persist: float = 0.0
    total: float = 0.0


class AnalysisResult(Output):
    analysis_id: str
    image: ImageInfo
    models: ModelsOut
    detections: list[DetectionOut]
    scale: ScaleOut
    surface: SurfaceOut
    mugs: list[MugOut]
    scene: SceneOut | None
    rules: list[RuleResultOut]
    positioning: PositioningOut
    feedback: FeedbackOut
    artifacts: ArtifactsOut
    persisted: PersistedOut
    embedding: list[float] | None = None
    timings_ms: TimingsOut
    metadata: dict[str, Any]

    def to_output(self) -> dict[str, Any]:
        """The JSON-ready dict; ``embedding`` only when it was asked for."""
        data = self.model_dump(mode="json", by_alias=True)
        if data["embedding"] is None:
            del data["embedding"]
        return data


class BatchItemError(Output):
    id: str
    analysis_id: str
    error: str


class BatchSummary(Output):
    images: int
    ok: int
    failed: int
    mugs: int
    violations: int
    timings_ms: dict[str, float]
