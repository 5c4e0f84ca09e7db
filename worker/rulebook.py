"""Rules as jobs send them (sentences or structured), named rule sets, and the built-in default set."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from rules.defaults import DEFAULT_DESCRIPTION, DEFAULT_RULES, DEFAULT_SET_NAME
from rules.model import MAX_RULE_TEXT, Rule, canonical, rule_from_dict
from rules.parser import RuleParseError, parse_rule
from storage.base import RecordStore
from worker.errors import JobError, describe_validation_error
from worker.schemas import MAX_RULES, RuleItem

log = logging.getLogger(__name__)


def parse_items(items: Sequence[RuleItem], field: str = "rules") -> list[Rule]:
    """Rule items (sentences or structured rules) to rules, in input order.

    The one way in for a job's rules, a stored rule set's and the ``parse_rules`` action's; an
    error names the item by ``field`` and index, so a client with many rules knows which to fix.
    """
    rules: list[Rule] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if isinstance(item, str) and len(item) > MAX_RULE_TEXT:
            raise JobError(
                "invalid_input", f"{where}: at most {MAX_RULE_TEXT} characters per rule sentence"
            )
        if isinstance(item, str):
            try:
                rules.append(parse_rule(item))
            except RuleParseError as error:
                raise JobError("rule_parse_error", f"{where}: {error}") from None
            continue
        try:
            rules.append(rule_from_dict(item))
        except ValidationError as error:
            raise JobError("invalid_input", describe_validation_error(error, where)) from None
    return rules


class RuleBook:
    """Named rule sets in the results store, with the built-in ``default`` behind a stored one.

    Sets are read from the results store on every job, not cached: a lookup by id costs about a
    millisecond, and a cached copy could judge with a set another worker has just replaced.
    """

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def resolve(self, items: Sequence[RuleItem] | None, rule_set: str | None) -> list[Rule]:
        """SPEC 2.2: the job's rules plus the named set's; with neither, the ``default`` set."""
        rules = parse_items(items or [])
        if rule_set is not None:
            rules.extend(self.rules_of(rule_set))
        if items is None and rule_set is None:
            rules.extend(self.rules_of(DEFAULT_SET_NAME))
        return rules

    def rules_of(self, name: str) -> list[Rule]:
        """A stored set's rules, checked again: one stored before today's bounds may break them."""
        stored = self.get(name)["rules"]
        if len(stored) > MAX_RULES:
            raise JobError(
                "invalid_input",
                f"rule_set: {name[:64]!r} holds {len(stored)} rules; at most {MAX_RULES} (store "
                "it again in smaller sets)",
            )
        return parse_items(stored, field=f"rule_set {name[:64]!r} rules")

    def get(self, name: str) -> dict[str, Any]:
        try:
            stored = self.records.get_named("rule_sets", name)
        except Exception:
            if name != DEFAULT_SET_NAME:
                raise JobError(
                    "internal_error",
                    f"rule_set: the results store is not answering, so {name[:64]!r} cannot be "
                    "read; try again, or send the rules in the job",
                ) from None
            log.warning("results store down: judging with the built-in default rule set")
            stored = None
        if stored is not None:
            return stored
        if name == DEFAULT_SET_NAME:
            return _built_in_default()
        raise JobError("not_found", f"rule_set: no rule set named {name[:64]!r}")

    def put(self, name: str, description: str, items: Sequence[RuleItem]) -> dict[str, Any]:
        return self.records.put_named(
            "rule_sets",
            name,
            {"description": description, "rules": canonical(parse_items(items))},
        )

    def list(self) -> list[dict[str, Any]]:
        stored = self.records.list_named("rule_sets")
        names = {rule_set["name"] for rule_set in stored}
        sets = stored if DEFAULT_SET_NAME in names else [_built_in_default(), *stored]
        return [
            {**s, "built_in": s.get("built_in", False)}
            for s in sorted(sets, key=lambda s: s["name"])
        ]

    def delete(self, name: str) -> dict[str, Any]:
        if self.records.delete_named("rule_sets", name):
            return {"name": name, "deleted": True}
        if name == DEFAULT_SET_NAME:
            raise JobError("invalid_input", "name: the built-in 'default' set cannot be deleted")
        raise JobError("not_found", f"name: no rule set named {name[:64]!r}")


def _built_in_default() -> dict[str, Any]:
    return {
        "name": DEFAULT_SET_NAME,
        "description": DEFAULT_DESCRIPTION,
        "rules": canonical(list(DEFAULT_RULES)),
        "version": 0,
        "updated_at": None,
        "built_in": True,
    }
