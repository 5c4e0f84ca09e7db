"""Scoring the sentence parser on a corpus: the share of rules read with the right meaning.

A rule line is ``{"text": ..., "expect": {"type", "severity", "object"?, "distance"?: [value,
unit], "zone"?, "mode"?, "min"?, "max"?}}``; it is understood when ``parse_rule`` gives a rule
with those fields (a physical distance compared in millimetres, px and % by value and unit; an
attribute by type and severity). A non-rule line is ``{"text": ..., "why": ...}``; refusing it is
right, accepting it is a false accept (``python -m scripts.rule_corpus``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules.model import PHYSICAL_UNITS, Rule, to_millimetres
from rules.parser import RuleParseError, parse_rule

MM_TOLERANCE = 0.01


@dataclass
class Score:
    """How many lines were right, and the wrong ones with what the parser said."""

    total: int = 0
    right: int = 0
    misses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.right / self.total if self.total else 0.0


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _same_distance(rule: dict[str, Any], expected: list[Any]) -> bool:
    value, unit = float(expected[0]), str(expected[1])
    got = rule.get("distance")
    if got is None:
        return False
    if unit in PHYSICAL_UNITS and got["unit"] in PHYSICAL_UNITS:
        gap = to_millimetres(got["value"], got["unit"]) - to_millimetres(value, unit)
        return abs(gap) <= MM_TOLERANCE
    return bool(got["unit"] == unit and abs(got["value"] - value) <= 1e-9)


def differences(rule: Rule, expect: dict[str, Any]) -> list[str]:
    """The expected fields the rule gets wrong ("object: tv != laptop"); empty when it is right."""
    got = rule.model_dump(mode="json")
    wrong: list[str] = []
    for key, value in expect.items():
        if got["type"] == "attribute" and key not in {"type", "severity"}:
            continue
        if key == "distance":
            if not _same_distance(got, value):
                wrong.append(f"distance: {got.get('distance')} != {value}")
        elif got.get(key) != value:
            wrong.append(f"{key}: {got.get(key)} != {value}")
    if got["type"] == "count" and expect.get("type") == "count":
        wrong += [
            f"{key}: {got[key]} != None"
            for key in ("min", "max")
            if key not in expect and got[key] is not None
        ]
    return wrong


def score_rules(lines: list[dict[str, Any]]) -> Score:
    score = Score()
    for line in lines:
        score.total += 1
        try:
            wrong = differences(parse_rule(line["text"]), line["expect"])
        except RuleParseError as error:
            wrong = [f"refused: {error.reason}"]
        if wrong:
            score.misses.append((line["text"], "; ".join(wrong)))
        else:
            score.right += 1
    return score


def score_nonrules(lines: list[dict[str, Any]]) -> Score:
    """``right`` counts refusals; each accept is a miss, listed with the rule it became."""
    score = Score()
    for line in lines:
        score.total += 1
        try:
            rule = parse_rule(line["text"])
        except RuleParseError:
            score.right += 1
            continue
        score.misses.append((line["text"], rule.model_dump_json(exclude={"id", "text"})))
    return score
