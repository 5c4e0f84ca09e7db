"""Score the sentence parser on a corpus: the share of rules read with the right meaning.

    python -m scripts.rule_corpus tests/corpus/rules_dev.jsonl [--nonrules tests/corpus/nonrules.jsonl]

Prints the shares and every miss (the scoring: training/rule_corpus.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training.rule_corpus import read_lines, score_nonrules, score_rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", type=Path, help="JSON Lines of sentences with the rule they mean")
    parser.add_argument("--nonrules", type=Path, help="JSON Lines of sentences that are no rule")
    args = parser.parse_args(argv)
    rules = score_rules(read_lines(args.rules))
    print(f"rules understood: {rules.right}/{rules.total} = {rules.share:.1%}  ({args.rules})")
    for text, why in rules.misses:
        print(f"  miss: {text!r}: {why}")
    if args.nonrules is not None:
        nonrules = score_nonrules(read_lines(args.nonrules))
        accepts = nonrules.total - nonrules.right
        share = accepts / nonrules.total if nonrules.total else 0.0
        print(f"false accepts: {accepts}/{nonrules.total} = {share:.1%}  ({args.nonrules})")
        for text, rule in nonrules.misses:
            print(f"  accepted: {text!r} -> {rule}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
