"""The structured rule model of SPEC 4.1: one pydantic model per rule type, a union on ``type``.

Distances carry their unit; conversion to pixels goes through pint (physical units need a scale,
``%`` is percent of the image width, ``px`` is itself). Object names are normalised to the
detector's COCO class names through the vocabulary, so ``computer`` and ``laptop`` are one rule.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from typing import Annotated, Any, Literal

import pint
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from rules.vocabulary import canonical_object, canonical_subject

Severity = Literal["info", "warning", "critical"]
Unit = Literal["px", "%", "mm", "cm", "m", "in", "ft"]
ZoneName = Literal[
    "left_half",
    "right_half",
    "top_half",
    "bottom_half",
    "left_third",
    "center_third",
    "right_third",
    "center",
]
PHYSICAL_UNITS = ("mm", "cm", "m", "in", "ft")
UNIT_SPELLINGS = {
    "px": "px",
    "pixel": "px",
    "pixels": "px",
    "%": "%",
    "percent": "%",
    "mm": "mm",
    "millimeter": "mm",
    "millimeters": "mm",
    "millimetre": "mm",
    "millimetres": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimeters": "cm",
    "centimetre": "cm",
    "centimetres": "cm",
    "m": "m",
    "meter": "m",
    "meters": "m",
    "metre": "m",
    "metres": "m",
    "in": "in",
    '"': "in",
    "inch": "in",
    "inches": "in",
    "ft": "ft",
    "'": "ft",
    "foot": "ft",
    "feet": "ft",
}
# The longest distance a rule may name, by unit kind: far beyond any desk, and finite whatever
# the scale (with the smallest mm per pixel, 100 m is 1e8 px), so the placement search is bounded.
MAX_DISTANCE = {"physical_mm": 100_000.0, "px": 100_000.0, "%": 1_000.0}
MAX_POLYGON_POINTS = 64
MAX_RULE_TEXT = 500  # characters of a rule's sentence
_DISTANCE_TEXT = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z%\"']+)\s*$")


@cache
def _units() -> pint.UnitRegistry:
    return pint.UnitRegistry()


@cache
def _millimetres_per(unit: str) -> float:
    registry = _units()
    return float(registry.Quantity(1.0, unit).to(registry.millimeter).magnitude)


def length_in_millimetres(word: str) -> float | None:
    """Millimetres in one ``word`` when pint reads it as a listed unit spelt another way
    ("metres", "centimeter", "foot"), else ``None``: a length the unit list does not name
    ("yards", "decimetres", "km") is refused as unknown, as SPEC 4.1 lists the units."""
    if not (word.isascii() and word.isalpha()):
        return None
    try:
        quantity = _units().Quantity(1.0, word)
        if str(quantity.units) not in _listed_units():
            return None
        return float(quantity.to(_units().millimeter).magnitude)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError):
        return None


@cache
def _listed_units() -> frozenset[str]:
    """pint's names of the physical units a rule may use ("millimeter", ..., "foot")."""
    return frozenset(str(_units().Unit(unit)) for unit in PHYSICAL_UNITS)


def to_millimetres(value: float, unit: str) -> float:
    """A physical length in millimetres, by pint's factor for the unit (``in``, ``ft``, ``cm``, ...).

    The factor is looked up once per unit: every rule of every mug converts its distance.
    """
    return value * _millimetres_per(unit)


class Distance(BaseModel):
    """A length with its unit: ``{"value": 15, "unit": "cm"}``, also written ``"15 cm"``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    value: float = Field(ge=0)
    unit: Unit

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = _DISTANCE_TEXT.match(data)
            unit = UNIT_SPELLINGS.get(match.group(2).lower()) if match else None
            if match is None or unit is None:
                raise ValueError(
                    f"expected a distance such as '15 cm' or '6 in' (units px, %, mm, cm, m, "
                    f"in, ft), got {data[:40]!r}"
                )
            return {"value": float(match.group(1)), "unit": unit}
        if isinstance(data, dict) and isinstance(data.get("unit"), str):
            return {**data, "unit": UNIT_SPELLINGS.get(data["unit"].lower(), data["unit"])}
        return data

    @model_validator(mode="after")
    def _bounded(self) -> Distance:
        if self.physical:
            if to_millimetres(self.value, self.unit) > MAX_DISTANCE["physical_mm"]:
                raise ValueError(f"at most {MAX_DISTANCE['physical_mm'] / 1000:g} m, got {self}")
        elif self.value > MAX_DISTANCE[self.unit]:
            raise ValueError(f"at most {MAX_DISTANCE[self.unit]:g} {self.unit}, got {self}")
        return self

    @property
    def physical(self) -> bool:
        return self.unit in PHYSICAL_UNITS

    def to_px(self, mm_per_px: float | None, image_width: float) -> float | None:
        """The distance in pixels; ``None`` for a physical unit when no scale is known."""
        if self.unit == "px":
            return self.value
        if self.unit == "%":
            return self.value / 100.0 * image_width
        if mm_per_px is None:
            return None
        return to_millimetres(self.value, self.unit) / mm_per_px

    def in_unit(self, px: float, mm_per_px: float | None, image_width: float) -> float | None:
        """A pixel length expressed in this distance's unit (for ``measured``)."""
        if self.unit == "px":
            return px
        if self.unit == "%":
            return px / image_width * 100.0
        if mm_per_px is None:
            return None
        return px * mm_per_px / to_millimetres(1.0, self.unit)

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}" if self.unit != "%" else f"{self.value:g}%"


class RuleBase(BaseModel):
    """What every rule has. ``id`` is a stable hash of the rule's content when not given."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str | None = Field(None, min_length=1, max_length=128)
    subject: str = Field("mug", max_length=64)
    severity: Severity = "warning"
    enabled: bool = True
    text: str | None = Field(None, max_length=MAX_RULE_TEXT)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return canonical_subject(value)

    @model_validator(mode="after")
    def _stable_id(self) -> RuleBase:
        if self.id is None:
            content = self.model_dump(mode="json", exclude={"id", "text", "enabled"})
            digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
            object.__setattr__(self, "id", f"r-{digest[:10]}")
        return self

    @property
    def rule_id(self) -> str:
        assert self.id is not None
        return self.id


class ObjectRule(RuleBase):
    object: str = Field(max_length=64)
    distance: Distance

    @field_validator("object")
    @classmethod
    def _object(cls, value: str) -> str:
        return canonical_object(value)


class MinDistanceRule(ObjectRule):
    """The mug keeps at least ``distance`` from every object of the class."""

    type: Literal["min_distance"] = "min_distance"


class MaxDistanceRule(ObjectRule):
    """The mug stays within ``distance`` of the nearest object of the class."""

    type: Literal["max_distance"] = "max_distance"


class EdgeMarginRule(RuleBase):
    """The mug keeps at least ``distance`` from the edge of the surface."""

    type: Literal["edge_margin"] = "edge_margin"
    distance: Distance


class ZoneRule(RuleBase):
    """The mug's centre is inside (or outside) a region of the surface box."""

    type: Literal["zone"] = "zone"
    zone: ZoneName | list[tuple[float, float]]
    mode: Literal["inside", "outside"] = "inside"

    @field_validator("zone")
    @classmethod
    def _polygon(cls, value: object) -> object:
        if isinstance(value, list):
            if not 3 <= len(value) <= MAX_POLYGON_POINTS:
                raise ValueError(f"a zone polygon has 3 to {MAX_POLYGON_POINTS} points")
            if not all(0 <= x <= 1 and 0 <= y <= 1 for x, y in value):
                raise ValueError("zone polygon points are [x, y] between 0 and 1 of the surface")
        return value


class CountRule(RuleBase):
    """The number of mugs is within bounds (one result for the image)."""

    type: Literal["count"] = "count"
    min: int | None = Field(None, ge=0, le=10_000)
    max: int | None = Field(None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _bounds(self) -> CountRule:
        if self.min is None and self.max is None:
            raise ValueError("a count rule needs 'min', 'max' or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("count: 'min' is larger than 'max'")
        return self


class SpacingRule(RuleBase):
    """Every two mugs keep at least ``distance`` between them."""

    type: Literal["spacing"] = "spacing"
    distance: Distance


DEFAULT_NEGATIVE = "a photo of a mug"


class AttributeRule(RuleBase):
    """CLIP prefers ``prompt`` over ``negative`` on the mug's crop with at least ``threshold``."""

    type: Literal["attribute"] = "attribute"
    prompt: str = Field(min_length=1, max_length=200)
    negative: str = Field(DEFAULT_NEGATIVE, min_length=1, max_length=200)
    threshold: float = Field(0.5, ge=0, le=1)


Rule = Annotated[
    MinDistanceRule
    | MaxDistanceRule
    | EdgeMarginRule
    | ZoneRule
    | CountRule
    | SpacingRule
    | AttributeRule,
    Field(discriminator="type"),
]
RULE_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


def rule_from_dict(data: dict[str, Any]) -> Rule:
    """Validate one structured rule (raises pydantic's ValidationError)."""
    return RULE_ADAPTER.validate_python(data)


def canonical(rules: list[Rule]) -> list[dict[str, Any]]:
    """The rules as plain JSON, in order: what a cache key and a stored rule set hold."""
    return [rule.model_dump(mode="json") for rule in rules]
