"""``attribute``: CLIP prefers the rule's prompt over its negative on the mug's crop."""

from __future__ import annotations

from typing import cast

from positioning.scene import MugPlacement, Scene
from rules.kinds.base import ClipPrompted, Judging, PerMug
from rules.model import AttributeRule
from rules.outcome import Measured, Required, RuleResult


class Attribute(PerMug, ClipPrompted):
    def judge_mug(
        self, rule: AttributeRule, mug: MugPlacement, scene: Scene, judging: Judging
    ) -> RuleResult:
        required = Required(op=">=", value=rule.threshold, unit="probability")
        scores = judging.attribute_scores
        score = None if scores is None else scores.get((rule.rule_id, mug.id))
        if score is None:
            message = f"{mug.id}: '{rule.prompt}' needs CLIP on the image; it was not run."
            return RuleResult(rule, mug.id, "unknown", None, required, message)
        passed = score >= rule.threshold
        verdict = "looks like" if passed else "does not look like"
        message = (
            f"{mug.id} {verdict} '{rule.prompt}' (CLIP {score:.2f} against '{rule.negative}', "
            f"needs {rule.threshold:.2f})."
        )
        measured = Measured(round(score, 4), "probability")
        return RuleResult(rule, mug.id, "pass" if passed else "fail", measured, required, message)

    def clip_prompts(self, rule: AttributeRule) -> tuple[str, str]:
        return rule.prompt, rule.negative

    def problem(self, result: RuleResult) -> str:
        return f"not {cast(AttributeRule, result.rule).prompt}"

    def advice(self, result: RuleResult) -> str | None:
        prompt = cast(AttributeRule, result.rule).prompt
        return f"Mug {result.mug_id} should be {prompt.removeprefix('a mug ')}."
