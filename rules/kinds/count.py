"""``count``: the number of mugs in the image is within bounds (one result for the image)."""

from __future__ import annotations

from positioning.scene import Scene
from rules.kinds.base import Judging
from rules.model import CountRule
from rules.outcome import Measured, Required, RuleResult, Status


class Count:
    def evaluate(self, rule: CountRule, scene: Scene, judging: Judging) -> list[RuleResult]:
        count = len(scene.mugs)
        if rule.min is not None and rule.max is not None:
            required = Required(op="between", value=[rule.min, rule.max], unit="mugs")
            bound = f"between {rule.min} and {rule.max}"
        elif rule.max is not None:
            required = Required(op="<=", value=rule.max, unit="mugs")
            bound = f"at most {rule.max}"
        else:
            assert rule.min is not None
            required = Required(op=">=", value=rule.min, unit="mugs")
            bound = f"at least {rule.min}"
        passed = (rule.min is None or count >= rule.min) and (rule.max is None or count <= rule.max)
        noun = "mug" if count == 1 else "mugs"
        message = f"{count} {noun} found ({bound} allowed)."
        status: Status = "pass" if passed else "fail"
        return [RuleResult(rule, None, status, Measured(count, "mugs"), required, message)]

    def problem(self, result: RuleResult) -> str:
        return result.message.rstrip(".")

    def advice(self, result: RuleResult) -> str | None:
        return f"{self.problem(result)}: add or remove mugs."
