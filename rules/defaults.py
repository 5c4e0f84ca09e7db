"""The built-in ``default`` rule set of SPEC 4.4, used when a job names no rules."""

from __future__ import annotations

from rules.model import Rule, rule_from_dict

DEFAULT_SET_NAME = "default"
DEFAULT_DESCRIPTION = "Built-in: mugs away from laptops, keyboards and phones, and off the edge."
DEFAULT_RULES: tuple[Rule, ...] = tuple(
    rule_from_dict(rule)
    for rule in (
        {"type": "min_distance", "object": "laptop", "distance": "15 cm"},
        {"type": "min_distance", "object": "keyboard", "distance": "10 cm"},
        {"type": "min_distance", "object": "cell phone", "distance": "10 cm"},
        {"type": "edge_margin", "distance": "5 cm", "severity": "critical"},
    )
)
