"""Time the sentence parser: 1,000 rule sentences through ``parse_items``, and 1,000 refusals.

    python -m scripts.bench_parser [--count 1000]

The sentences are the README's table of accepted sentences and, where they exist, the rules of
``tests/corpus/rules_dev.jsonl`` (cycled to ``--count``); the refusals are the non-rules of
``tests/corpus/nonrules.jsonl``. There is no sentence cache, so a repeated sentence costs as
much as a new one. Prints the seconds for each batch and the mean per sentence.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from pathlib import Path

from rules.parser import RuleParseError, parse_rule
from rules.slots import prepare
from worker.rulebook import parse_items

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


def readme_sentences() -> list[str]:
    """The first column of the README's "Accepted sentences" table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Accepted sentences", 1)[1].split("\n## ", 1)[0]
    table = section.split("| sentence | rule |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    return [row for row in rows if row not in {"sentence", "---"}]


def corpus_texts(name: str) -> list[str]:
    path = CORPUS / name
    if not path.exists():
        return []
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args(argv)
    rules = readme_sentences() + corpus_texts("rules_dev.jsonl")
    batch = list(itertools.islice(itertools.cycle(rules), args.count))
    prepare()  # the phrase table and word list, as the worker loads them at start-up
    parse_items(rules[:5])  # pint's registry, as the worker builds it at start-up
    started = time.perf_counter()
    parse_items(batch)
    seconds = time.perf_counter() - started
    print(f"parse_items, {len(batch)} rule sentences: {seconds:.3f} s "
          f"({seconds / len(batch) * 1000:.3f} ms each)")  # fmt: skip
    refusals = corpus_texts("nonrules.jsonl")
    if refusals:
        texts = list(itertools.islice(itertools.cycle(refusals), args.count))
        started = time.perf_counter()
        for text in texts:
            with contextlib.suppress(RuleParseError):
                parse_rule(text)
        seconds = time.perf_counter() - started
        print(f"parse_rule, {len(texts)} non-rules: {seconds:.3f} s "
              f"({seconds / len(texts) * 1000:.3f} ms each)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
