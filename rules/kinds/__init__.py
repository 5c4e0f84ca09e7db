"""The rule kinds: one module per rule type, found here by the rule's ``type``.

This registry is the one place that maps a rule to its behaviour; nothing else asks what type a
rule is. Adding a kind: its model in ``rules.model``, its grammar line(s) in ``rules.parser``, its
module here (a ``RuleKind``; a ``Placement`` if it decides where a mug may stand) and one line in
``KINDS`` (README: "Adding a rule kind").
"""

from __future__ import annotations

from rules.kinds.attribute import Attribute
from rules.kinds.base import ClipPrompted, Judging, Placement, RuleKind
from rules.kinds.count import Count
from rules.kinds.distance import MaxDistance, MinDistance
from rules.kinds.edge import EdgeMargin
from rules.kinds.spacing import Spacing
from rules.kinds.zone import Zone
from rules.model import Rule

KINDS: dict[str, RuleKind] = {
    "min_distance": MinDistance(),
    "max_distance": MaxDistance(),
    "edge_margin": EdgeMargin(),
    "zone": Zone(),
    "count": Count(),
    "spacing": Spacing(),
    "attribute": Attribute(),
}

__all__ = [
    "KINDS",
    "Judging",
    "Placement",
    "RuleKind",
    "clip_prompts",
    "kind_of",
    "placement_kind",
]


def kind_of(rule: Rule) -> RuleKind:
    return KINDS[rule.type]


def placement_kind(rule: Rule) -> Placement | None:
    """The rule's kind when it decides where the mug may stand (None: count, attribute)."""
    kind = kind_of(rule)
    return kind if isinstance(kind, Placement) else None


def clip_prompts(rule: Rule) -> tuple[str, str] | None:
    """The two prompts CLIP compares on each mug's crop for this rule (None: CLIP is not asked)."""
    kind = kind_of(rule)
    return kind.clip_prompts(rule) if isinstance(kind, ClipPrompted) else None
