"""Rules as jobs send them (sentences or structured), named rule sets, and the built-in default set."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from rules.defaults import DEFAULT_DESCRIPTION, DEFAULT_RULES, DEFAULT_SET_NAME
from rules.model import Rule, canonical, rule_from_dict
from rules.parser import RuleParseError, parse_rule
from storage.base import RecordStore, ResultCache
from worker.errors import JobError, describe_validation_error
from worker.schemas import RuleItem

log = logging.getLogger(__name__)


def parse_items(items: Sequence[RuleItem], field: str = "rules") -> list[Rule]:
    """Each sentence parsed, each structured rule validated; errors name the item's index."""
    rules: list[Rule] = []
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
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

    Sets read from the store are kept in the cache (Redis in production) and dropped from it when
    they change; a cache that fails is skipped.
    """

    def __init__(self, records: RecordStore, cache: ResultCache) -> None:
        self.records = records
        self.cache = cache

    def resolve(self, items: Sequence[RuleItem] | None, rule_set: str | None) -> list[Rule]:
        """SPEC 2.2: the job's rules plus the named set's; with neither, the ``default`` set."""
        rules = parse_items(items or [])
        if rule_set is not None:
            rules.extend(self.rules_of(rule_set))
        if items is None and rule_set is None:
            rules.extend(self.rules_of(DEFAULT_SET_NAME))
        return rules

    def rules_of(self, name: str) -> list[Rule]:
        return [rule_from_dict(rule) for rule in self.get(name)["rules"]]

    def get(self, name: str) -> dict[str, Any]:
        stored = self._cached(name)
        if stored is None:
            stored = self.records.get_rule_set(name)
            if stored is not None:
                self._remember(name, stored)
        if stored is not None:
            return stored
        if name == DEFAULT_SET_NAME:
            return _built_in_default()
        raise JobError("not_found", f"rule_set: no rule set named {name[:64]!r}")

    def put(self, name: str, description: str, items: Sequence[RuleItem]) -> dict[str, Any]:
        rules = canonical(parse_items(items))
        self._forget(name)
        stored = self.records.put_rule_set(name, description, rules)
        self._forget(name)
        return stored

    def list(self) -> list[dict[str, Any]]:
        stored = self.records.list_rule_sets()
        names = {rule_set["name"] for rule_set in stored}
        sets = stored if DEFAULT_SET_NAME in names else [_built_in_default(), *stored]
        return [
            {
                "name": s["name"],
                "description": s["description"],
                "version": s["version"],
                "updated_at": s["updated_at"],
                "rules": len(s["rules"]),
                "built_in": s.get("built_in", False),
            }
            for s in sorted(sets, key=lambda s: s["name"])
        ]

    def delete(self, name: str) -> dict[str, Any]:
        self._forget(name)
        if self.records.delete_rule_set(name):
            return {"name": name, "deleted": True}
        if name == DEFAULT_SET_NAME:
            raise JobError("invalid_input", "name: the built-in 'default' set cannot be deleted")
        raise JobError("not_found", f"name: no rule set named {name[:64]!r}")

    def _cached(self, name: str) -> dict[str, Any] | None:
        try:
            return self.cache.get(_cache_key(name))
        except Exception:
            log.warning("rule-set cache read failed", exc_info=True)
            return None

    def _remember(self, name: str, rule_set: dict[str, Any]) -> None:
        try:
            self.cache.set(_cache_key(name), rule_set)
        except Exception:
            log.warning("rule-set cache write failed", exc_info=True)

    def _forget(self, name: str) -> None:
        try:
            self.cache.delete(_cache_key(name))
        except Exception:
            log.warning("rule-set cache invalidation failed", exc_info=True)


def _cache_key(name: str) -> str:
    return f"rule_set:{name}"


def _built_in_default() -> dict[str, Any]:
    return {
        "name": DEFAULT_SET_NAME,
        "description": DEFAULT_DESCRIPTION,
        "rules": canonical(list(DEFAULT_RULES)),
        "version": 0,
        "updated_at": None,
        "built_in": True,
    }
