"""Pydantic models of every job input and result shape: SPEC sections 2 and 3, in code.

Inputs forbid unknown keys (a typo is an error, not a silent default). Results forbid NaN and
infinity, so whatever is returned survives ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from models.detector import MAX_DETECTIONS, DetectorOptions
from positioning.plane import (
    MARKER_DICTIONARIES,
    CalibrationError,
    Homography,
    fit_homography,
)
from rules.model import MAX_POLYGON_POINTS
from storage.history import METADATA_PREFIX, Cursor, HistoryQuery

IMAGE_FIELDS = ("image", "image_url", "image_key")
ITEM_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32
MAX_METADATA_VALUES = 10_000
# Rules per job, per rule set and per parse_rules call (a sentence's length: rules.model)
MAX_RULES = 100
# A scale from mm per pixel: a microscope (0.001) to a satellite (1000); desk photos are ~0.2-5
MM_PER_PX_RANGE = (0.001, 1000.0)
# Box coordinates of given detections, in pixels
MAX_COORDINATE = 1_000_000.0
Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE)]
# a calibration point's position on the table, in mm (100 m either way is more than any room)
PlaneMillimetres = Annotated[float, Field(ge=-100_000, le=100_000)]
MAX_CALIBRATION_POINTS = 100
INT64 = 2**63


def _storable(value: Any, path: str = "") -> None:
    """Refuse what the stores cannot keep, here rather than in an outbox later: NaN, integers
    beyond 64 bits, broken unicode, keys MongoDB treats as operators or paths."""
    where = f"{path}: " if path else ""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int) and not -INT64 <= value < INT64:
        raise ValueError(f"{where}integers must fit in 64 bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}numbers must be finite")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}text is not valid unicode") from None
    if isinstance(value, list):
        for index, item in enumerate(value):
            _storable(item, f"{path}[{index}]")
    if isinstance(value, dict):
        for key, item in value.items():
            _storable(key, path)
            if key.startswith("$") or "." in key:
                raise ValueError(
                    f"{where}keys may not start with '$' or contain '.' ({key[:40]!r})"
                )
            _storable(item, f"{path}.{key}" if path else key)


def _check_shape(value: Any) -> None:
    """Depth and size first, without recursion: thousands of levels must not reach the
    recursive checks (or a store's encoder) below."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    values = 0
    while pending:
        item, depth = pending.pop()
        values += 1
        if values > MAX_METADATA_VALUES:
            raise ValueError(f"at most {MAX_METADATA_VALUES:,} values")
        if isinstance(item, dict | list):
            if depth > MAX_METADATA_DEPTH:
                raise ValueError(f"nested at most {MAX_METADATA_DEPTH} levels deep")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    _check_shape(value)
    _storable(value)
    if len(json.dumps(value)) > MAX_METADATA_BYTES:
        raise ValueError(f"at most {MAX_METADATA_BYTES} bytes of JSON")
    return value


# Any JSON object, echoed in the result and kept with the record.
Metadata = Annotated[dict[str, Any], AfterValidator(_check_metadata)]
RULE_SET_NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
# A rule as a job sends it: a sentence to parse, or a structured rule (SPEC 4.1).
RuleItem = str | dict[str, Any]
RuleItems = Annotated[list[RuleItem], Field(max_length=MAX_RULES)]


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class Output(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, populate_by_name=True)


# ---------------------------------------------------------------- job inputs (SPEC 2)


class AnalyzeOptions(DetectorOptions):
    """The detector's options and what else the job does with the image."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True
    )

    clip: bool = True
    annotate: bool = True
    store: bool = True
    cache: bool = True
    return_embedding: bool = False

    def detector_options(self) -> DetectorOptions:
        return DetectorOptions(**self.model_dump(include=set(DetectorOptions.model_fields)))


class ReferenceObject(StrictInput):
    class_name: str = Field(alias="class", min_length=1, max_length=64)
    width_mm: float = Field(ge=1, le=100_000)


class PlanePoint(StrictInput):
    """An image point and where it lies on the table plane, in millimetres."""

    px: tuple[Coordinate, Coordinate]
    mm: tuple[PlaneMillimetres, PlaneMillimetres]


class Marker(StrictInput):
    """An ArUco marker lying flat on the table, found in the image (SPEC 10)."""

    dictionary: str = "DICT_4X4_50"
    id: int = Field(0, ge=0, le=10_000)
    size_mm: float = Field(gt=0, le=10_000)

    @field_validator("dictionary")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in MARKER_DICTIONARIES:
            raise ValueError(
                f"unknown ArUco dictionary {value!r}; one of DICT_4X4_50, DICT_5X5_100, "
                "DICT_6X6_250, DICT_ARUCO_ORIGINAL ..."
            )
        return value


CALIBRATION_KINDS = ("mm_per_px", "reference", "points", "marker")


class Calibration(StrictInput):
    mm_per_px: float | None = Field(None, ge=MM_PER_PX_RANGE[0], le=MM_PER_PX_RANGE[1])
    reference: ReferenceObject | None = None
    points: list[PlanePoint] | None = Field(None, max_length=MAX_CALIBRATION_POINTS)
    marker: Marker | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Calibration:
        given = [name for name in CALIBRATION_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'mm_per_px', 'reference', 'points' or 'marker'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @field_validator("points")
    @classmethod
    def _one_plane(cls, points: list[PlanePoint] | None) -> list[PlanePoint] | None:
        """Too few, repeated, collinear or inconsistent points are refused here, by name."""
        if points is not None:
            try:
                fit_homography([p.px for p in points], [p.mm for p in points])
            except CalibrationError as error:
                raise ValueError(error.reason) from error
        return points

    def reference_pair(self) -> tuple[str, float] | None:
        """The reference object as (class name, real width in mm), if one was given."""
        if self.reference is None:
            return None
        return self.reference.class_name.strip().lower(), self.reference.width_mm

    def point_homography(self) -> Homography | None:
        """The table plane through the given points (None without points); a bad set of points
        raises ``CalibrationError`` naming ``calibration.points``."""
        if self.points is None:
            return None
        return fit_homography([p.px for p in self.points], [p.mm for p in self.points])


# (x, y) in 0..1 of the image width and height; the range is checked by ``check_surface``.
NormalisedPoint = tuple[float, float]


def check_surface(surface: list[NormalisedPoint]) -> None:
    if not all(0.0 <= x <= 1.0 and 0.0 <= y <= 1.0 for x, y in surface):
        raise ValueError("surface: points are normalised [x, y] pairs between 0 and 1")


class ImageSource(StrictInput):
    image: str | None = None
    image_url: str | None = None
    image_key: str | None = None

    def given_sources(self) -> list[str]:
        return [name for name in IMAGE_FIELDS if getattr(self, name) is not None]


class BatchItem(ImageSource):
    id: str | None = Field(None, pattern=ITEM_ID_PATTERN)
    # Merged over the job's metadata for this image (a desk id, a camera, a file name ...).
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> BatchItem:
        if len(self.given_sources()) != 1:
            raise ValueError("give exactly one of 'image', 'image_url' or 'image_key'")
        return self


class AnalyzeInput(ImageSource):
    action: Literal["analyze"] = "analyze"
    images: list[BatchItem] | None = Field(None, min_length=1)
    rules: RuleItems | None = None
    rule_set: str | None = Field(None, min_length=1)
    calibration: Calibration | None = None
    surface: list[NormalisedPoint] | None = Field(None, min_length=3, max_length=MAX_POLYGON_POINTS)
    # a stored camera profile: its calibration and surface unless the job gives its own
    camera: str | None = Field(None, pattern=RULE_SET_NAME_PATTERN)
    options: AnalyzeOptions = Field(default_factory=AnalyzeOptions)
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> AnalyzeInput:
        given = self.given_sources() + (["images"] if self.images is not None else [])
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(
                f"give exactly one of 'image', 'image_url', 'image_key' or 'images' ({found})"
            )
        if self.surface is not None:
            check_surface(self.surface)
        if self.images is not None:
            ids = [item.id or str(index) for index, item in enumerate(self.images)]
            if len(set(ids)) != len(ids):
                raise ValueError("images: item ids must be unique")
            for item, item_id in zip(self.images, ids, strict=True):
                item.id = item_id
        return self


class GivenDetection(StrictInput):
    """A detection supplied to ``evaluate`` (the shape of a result's ``detections``)."""

    class_name: str = Field(alias="class", min_length=1, max_length=64)
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate]
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    id: str | None = Field(None, min_length=1, max_length=64)
    class_id: int | None = None
    box_norm: tuple[float, float, float, float] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> GivenDetection:
        x1, y1, x2, y2 = self.box
        if not (x1 <= x2 and y1 <= y2):
            raise ValueError("box: expected [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2")
        return self


class EvaluateInput(StrictInput):
    action: Literal["evaluate"]
    analysis_id: str | None = Field(None, min_length=1)
    detections: list[GivenDetection] | None = Field(None, max_length=MAX_DETECTIONS)
    image_size: tuple[int, int] | None = None
    rules: RuleItems | None = None
    rule_set: str | None = Field(None, min_length=1)
    calibration: Calibration | None = None
    surface: list[NormalisedPoint] | None = Field(None, min_length=3, max_length=MAX_POLYGON_POINTS)
    camera: str | None = Field(None, pattern=RULE_SET_NAME_PATTERN)

    @model_validator(mode="after")
    def _check(self) -> EvaluateInput:
        if (self.analysis_id is None) == (self.detections is None):
            raise ValueError(
                "give either 'analysis_id' or 'detections' with 'image_size', not both"
            )
        if self.detections is not None and self.image_size is None:
            raise ValueError("image_size: required with detections, as [width, height]")
        if self.image_size is not None and not all(1 <= v <= 100_000 for v in self.image_size):
            raise ValueError("image_size: width and height must be between 1 and 100000")
        if self.surface is not None:
            check_surface(self.surface)
        return self


class ParseRulesInput(StrictInput):
    action: Literal["parse_rules"]
    rules: RuleItems = Field(min_length=1)


class PutRuleSetInput(StrictInput):
    action: Literal["put_rule_set"]
    name: str = Field(pattern=RULE_SET_NAME_PATTERN)
    description: str = Field("", max_length=500)
    rules: RuleItems = Field(min_length=1)


class RuleSetNameInput(StrictInput):
    action: Literal["get_rule_set", "delete_rule_set"]
    name: str = Field(pattern=RULE_SET_NAME_PATTERN)


class ListRuleSetsInput(StrictInput):
    action: Literal["list_rule_sets"]


class PutCameraInput(StrictInput):
    """A camera profile (SPEC 10): how a fixed camera sees its table, kept by name."""

    action: Literal["put_camera"]
    name: str = Field(pattern=RULE_SET_NAME_PATTERN)
    description: str = Field("", max_length=500)
    calibration: Calibration | None = None
    surface: list[NormalisedPoint] | None = Field(None, min_length=3, max_length=MAX_POLYGON_POINTS)

    @model_validator(mode="after")
    def _something(self) -> PutCameraInput:
        if self.calibration is None and self.surface is None:
            raise ValueError("give a calibration, a surface or both")
        if self.surface is not None:
            check_surface(self.surface)
        return self


class CameraNameInput(StrictInput):
    action: Literal["get_camera", "delete_camera"]
    name: str = Field(pattern=RULE_SET_NAME_PATTERN)


class ListCamerasInput(StrictInput):
    action: Literal["list_cameras"]


class FindSimilarInput(ImageSource):
    action: Literal["find_similar"]
    analysis_id: str | None = Field(None, min_length=1)
    limit: int = Field(5, ge=1, le=100)

    @model_validator(mode="after")
    def _one_query(self) -> FindSimilarInput:
        given = self.given_sources() + (["analysis_id"] if self.analysis_id else [])
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'image', 'image_url', 'image_key' or 'analysis_id'"
            )
        return self


class HealthInput(StrictInput):
    action: Literal["health"]


# ---------------------------------------------------------------- history (SPEC 11)

METADATA_KEY_PATTERN = r"[A-Za-z0-9_-]{1,64}"
GROUP_BY_PATTERN = rf"^(rule|day|metadata\.{METADATA_KEY_PATTERN})$"
MAX_HISTORY_FILTERS = 20
MAX_HISTORY_PAGE = 200
FilterValue = Annotated[str, Field(max_length=256)] | int | float | bool | None


def _utc_text(value: str | None, where: str) -> str | None:
    """An ISO 8601 time (a date alone is its midnight; no zone is UTC) as records keep theirs."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{where}: expected an ISO 8601 date or time, such as 2026-12-01"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


class HistoryFilters(StrictInput):
    """Which stored analyses: created in ``[since, until)``, with each metadata key equal."""

    since: str | None = Field(None, max_length=64)
    until: str | None = Field(None, max_length=64)
    filter: dict[str, FilterValue] = Field(default_factory=dict, max_length=MAX_HISTORY_FILTERS)

    @model_validator(mode="after")
    def _valid(self) -> HistoryFilters:
        for key in self.filter:
            name = key.removeprefix(METADATA_PREFIX)
            if not key.startswith(METADATA_PREFIX) or not re.fullmatch(METADATA_KEY_PATTERN, name):
                raise ValueError(
                    f"filter: keys are 'metadata.<key>' (letters, digits, '_', '-'), not {key[:40]!r}"
                )
        since, until = _utc_text(self.since, "since"), _utc_text(self.until, "until")
        if since is not None and until is not None and since >= until:
            raise ValueError("since: must be before until")
        return self

    def query(self) -> HistoryQuery:
        return HistoryQuery(
            since=_utc_text(self.since, "since"),
            until=_utc_text(self.until, "until"),
            metadata=tuple(
                (key.removeprefix(METADATA_PREFIX), value) for key, value in self.filter.items()
            ),
        )


class StatsInput(HistoryFilters):
    action: Literal["stats"]
    group_by: str = Field("day", pattern=GROUP_BY_PATTERN)


class ListAnalysesInput(HistoryFilters):
    action: Literal["list_analyses"]
    limit: int = Field(50, ge=1, le=MAX_HISTORY_PAGE)
    cursor: str | None = Field(None, max_length=2048)

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            Cursor.decode(value)
        return value

    def after(self) -> Cursor | None:
        return None if self.cursor is None else Cursor.decode(self.cursor)


class SeverityCounts(Output):
    critical: int
    warning: int
    info: int


class StatsRow(Output):
    key: Any
    analyses: int
    compliant: int
    violations: int
    by_severity: SeverityCounts
    mean_safety_score: float | None


class StatsOut(Output):
    group_by: str
    rows: list[StatsRow]


class AnalysisSummary(Output):
    analysis_id: str
    created_at: str | None
    image_key: str | None
    annotated_key: str | None
    annotated_url: str | None
    metadata: dict[str, Any]
    compliant: bool
    safety_score: float | None
    failed_rules: list[str]
    cache_hit: bool


class ListAnalysesOut(Output):
    analyses: list[AnalysisSummary]
    next_cursor: str | None


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
    source: Literal["model_dir", "hf_cache"]  # SPEC 8
    revision: str | None = None  # the Hugging Face cache's commit


class DetectorOut(ModelOut):
    classes: list[str]


class ClipOut(ModelOut):
    checks_mugs: bool = True  # whether its mug score decides (false: random weights, reported only)


class ModelsOut(Output):
    detector: DetectorOut
    clip: ClipOut | None
    device: str
    dtype: str


class DetectionOut(Output):
    id: str
    class_name: str = Field(alias="class")
    class_id: int
    confidence: float
    box: list[float]
    box_norm: list[float]


class ScaleOut(Output):
    # a calibrated scene's (homography): the table-plane scale at the table centre
    mm_per_px: float | None
    source: str
    approximate: bool
    # how far the calibration's points miss their own mm (RMS), when a homography was fitted
    reprojection_error_mm: float | None = None
    # that homography, image pixels (x, y, 1) to table millimetres, so a stored analysis can be
    # judged again on the same plane
    homography: list[list[float]] | None = None


class SurfaceOut(Output):
    box: list[float]
    polygon_norm: list[list[float]]
    source: str


class Distance(Output):
    px: float
    mm: float | None


class NeighbourOut(Output):
    detection_id: str
    class_name: str = Field(alias="class")
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
    edge_distance: Distance | None  # None: no table edge in view (the table runs out of frame)
    nearest: list[NeighbourOut]


class RejectedMugOut(Output):
    """A mug candidate the mug check turned down: reported, never judged by a rule."""

    detection_id: str
    confidence: float
    mug_score: float | None


class SceneOut(Output):
    labels: dict[str, float]


class Measured(Output):
    value: float
    unit: str


class Required(Output):
    op: str
    value: float | list[float] | list[list[float]]
    unit: str


class MoveOut(Output):
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
    adjustment: MoveOut | None


class OptimalPosition(Output):
    mug_id: str
    feasible: bool
    center: list[float] | None
    move: MoveOut | None
    # false: the analysis' placement budget ran out before this mug (feasible says nothing then)
    searched: bool = True


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
    model_config = ConfigDict(extra="forbid")  # a misspelt stage is an error, not a lost figure

    decode: float = 0.0
    detect: float = 0.0
    clip: float = 0.0
    analyze: float = 0.0
    rules: float = 0.0
    persist: float = 0.0
    total: float = 0.0


class Identified(Output):
    """The id of one image's analysis: the job id, plus ``:<item id>`` in a batch."""

    analysis_id: str


class ImageAnalysis(Output):
    """What an analysis found in one image, what the result cache keeps: a later job that sends
    the same image with the same options and rules gets it back, with its own ``image`` source,
    this worker's ``models`` and a fresh ``annotated_url``."""

    image: ImageInfo
    models: ModelsOut
    detections: list[DetectionOut]
    scale: ScaleOut
    surface: SurfaceOut
    mugs: list[MugOut]
    rejected_mugs: list[RejectedMugOut] = []  # older records and cache entries have none
    scene: SceneOut | None
    rules: list[RuleResultOut]
    positioning: PositioningOut
    feedback: FeedbackOut
    artifacts: ArtifactsOut
    embedding: list[float] | None = None


class AnalysisResult(ImageAnalysis, Identified):
    """One image's result (SPEC 3): its analysis and what this job did with it (``analysis_id``
    comes first: pydantic orders the fields of the later base first)."""

    persisted: PersistedOut
    timings_ms: TimingsOut
    metadata: dict[str, Any]

    def to_output(self, *, with_embedding: bool) -> dict[str, Any]:
        """The JSON-ready dict; ``embedding`` only when it was asked for (null without CLIP)."""
        return self.model_dump(
            mode="json", by_alias=True, exclude=None if with_embedding else {"embedding"}
        )


class AnalysisRecord(AnalysisResult):
    """What the results store keeps: the result with its embedding (for find_similar), whether it
    was answered from the cache, and when."""

    cache_hit: bool
    created_at: str


class EvaluateTimings(Output):
    analyze: float
    rules: float
    total: float


class EvaluateResult(Output):
    """The evaluate action's result: the scene measured from the given (or stored) detections and
    its verdict, no model run."""

    analysis_id: str | None
    image_size: list[int]
    detections: list[DetectionOut]
    scale: ScaleOut
    surface: SurfaceOut
    mugs: list[MugOut]
    rejected_mugs: list[RejectedMugOut]
    rules: list[RuleResultOut]
    positioning: PositioningOut
    feedback: FeedbackOut
    timings_ms: EvaluateTimings


class BatchItemError(Output):
    id: str
    analysis_id: str
    error: str


ProgressStage = Literal["decode", "detect", "clip", "analyze"]


class ProgressOut(Output):
    """A running batch job's ``output`` in a status poll: which stage, how many images are done
    (analysed and kept, or failed), and how many of those failed."""

    stage: ProgressStage
    images: int
    done: int
    failed: int


class BatchSummary(Output):
    images: int
    ok: int
    failed: int
    mugs: int
    violations: int
    timings_ms: dict[str, float]
