"""The slot reader (issue #16): phrasings the grammar does not list, refusals that name the slot,
ambiguity, agreement with the grammar on every sentence it reads, the vocabulary, and the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rules.model import rule_from_dict
from rules.parser import RuleParseError, _normalise, _read, parse_rule
from rules.slots import SlotRefusal, mend_typo, normalise, read_rule
from rules.vocabulary import UnknownObject, canonical_object
from tests.test_parser import EXAMPLES, PHRASINGS, structured
from training.rule_corpus import read_lines, score_nonrules, score_rules

CORPUS = Path(__file__).resolve().parent / "corpus"

# (sentence, the structured rule it means), by kind.
NEW_PHRASINGS: list[tuple[str, dict[str, Any]]] = [
    # severity anywhere, with any mark
    ("Heads up - keep mugs 10 cm from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "10 cm", "severity": "warning"}),
    ("URGENT: mugs at least 20 cm from the monitor",
     {"type": "min_distance", "object": "tv", "distance": "20 cm", "severity": "critical"}),
    ("Keep mugs 5 cm from the edge (critical)",
     {"type": "edge_margin", "distance": "5 cm", "severity": "critical"}),
    ("Critical -- keep mugs 10 cm from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "10 cm", "severity": "critical"}),
    ("Critical keep mugs 10 cm from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "10 cm", "severity": "critical"}),
    ("FYI mugs within 40 cm of the keyboard",
     {"type": "max_distance", "object": "keyboard", "distance": "40 cm", "severity": "info"}),
    ("Note: at most 4 cups", {"type": "count", "max": 4, "severity": "info"}),
    # a subject written as a label
    ("cups - 8 cm from the mouse", {"type": "min_distance", "object": "mouse", "distance": "8 cm"}),
    ("Mugs: 10 cm spacing", {"type": "spacing", "distance": "10 cm"}),
    # number phrases
    ("Keep mugs a quarter of a metre from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "0.25 m"}),
    ("Keep mugs one and a half inches from the phone",
     {"type": "min_distance", "object": "cell phone", "distance": "1.5 in"}),
    ("Keep mugs half a metre from the screen",
     {"type": "min_distance", "object": "tv", "distance": "0.5 m"}),
    ("Mugs should be a foot away from the keyboard",
     {"type": "min_distance", "object": "keyboard", "distance": "1 ft"}),
    ("mugs within three quarters of a metre of the monitor",
     {"type": "max_distance", "object": "tv", "distance": "0.75 m"}),
    ("Keep mugs 1 1/2 inches from the mouse",
     {"type": "min_distance", "object": "mouse", "distance": "1.5 in"}),
    ("mugs should always be kept ten or more centimetres from laptops",
     {"type": "min_distance", "object": "laptop", "distance": "10 cm"}),
    # loose words around a quantity
    ("The mug has to stay within roughly 15 cm of the keyboard",
     {"type": "max_distance", "object": "keyboard", "distance": "15 cm"}),
    ("Mugs need a 20 cm buffer around monitors",
     {"type": "min_distance", "object": "tv", "distance": "20 cm"}),
    # margins and insets
    ("Keep an inch of margin from the edge", {"type": "edge_margin", "distance": "1 in"}),
    ("Mugs need a 2 inch inset from the desk edges", {"type": "edge_margin", "distance": "2 in"}),
    ("Important - 12 cm edge clearance for mugs",
     {"type": "edge_margin", "distance": "12 cm", "severity": "critical"}),
    # counts with the bound after the noun or behind "never"
    ("Never more than 2 mugs", {"type": "count", "max": 2}),
    ("mugs: 3 max", {"type": "count", "max": 3}),
    ("Do not exceed three mugs", {"type": "count", "max": 3}),
    ("2 to 4 mugs on the desk", {"type": "count", "min": 2, "max": 4}),
    ("at least one and at most two mugs", {"type": "count", "min": 1, "max": 2}),
    ("a single mug at most", {"type": "count", "max": 1}),
    # zones with other verbs
    ("Mugs belong in the right half", {"type": "zone", "zone": "right_half", "mode": "inside"}),
    ("Mugs go on the left side of the desk",
     {"type": "zone", "zone": "left_half", "mode": "inside"}),
    ("Mugs are not allowed in the center", {"type": "zone", "zone": "center", "mode": "outside"}),
    ("Mugs shouldn't sit in the top half",
     {"type": "zone", "zone": "top_half", "mode": "outside"}),
    ("Mugs must stay out of the left third",
     {"type": "zone", "zone": "left_third", "mode": "outside"}),
    # spacing in new places
    ("Keep mugs 10 cm from each other", {"type": "spacing", "distance": "10 cm"}),
    ("Each mug should have 8 cm between them", {"type": "spacing", "distance": "8 cm"}),
    ("Leave 12 cm between one another", {"type": "spacing", "distance": "12 cm"}),
    ("Critical: no two mugs closer than 10 cm",
     {"type": "spacing", "distance": "10 cm", "severity": "critical"}),
    ("Keep a 5 cm gap between every pair of mugs", {"type": "spacing", "distance": "5 cm"}),
    # attributes, typos, synonyms and plurals
    ("Mugs should have a white handle",
     {"type": "attribute", "prompt": "a mug with a white handle"}),
    ("Mugs must be white", {"type": "attribute", "prompt": "a white mug"}),
    ("Keep mugs 10 cm from the keybord",
     {"type": "min_distance", "object": "keyboard", "distance": "10 cm"}),
    ("Mugs no farther thn 0.4 m from keyboards.",
     {"type": "max_distance", "object": "keyboard", "distance": "0.4 m"}),
    ("Keep mugs 10 cm from the mice", {"type": "min_distance", "object": "mouse", "distance": "10 cm"}),
    ("Mugs 10cm from smartphones",
     {"type": "min_distance", "object": "cell phone", "distance": "10 cm"}),
    ("Don't let mugs get within 20 cm of the computer",
     {"type": "min_distance", "object": "laptop", "distance": "20 cm"}),
    ("Make sure no mug is within 15 cm of any monitor",
     {"type": "min_distance", "object": "tv", "distance": "15 cm"}),
    ("mugs >= 10 cm from the laptop", {"type": "min_distance", "object": "laptop", "distance": "10 cm"}),
    ("mug count <= 3", {"type": "count", "max": 3}),
    ("Keep mugs off the centre of the desk", {"type": "zone", "zone": "center", "mode": "outside"}),
    ("No two cups within 5 cm of each other", {"type": "spacing", "distance": "5 cm"}),
    ("Could you keep cups no further than 10 inches from the mouse?",
     {"type": "max_distance", "object": "mouse", "distance": "10 in"}),
    # round 2: severity inside the sentence, intensifiers are not objects
    ("It is really important that mugs stay 12 cm from the monitor",
     {"type": "min_distance", "object": "tv", "distance": "12 cm", "severity": "critical"}),
    ("It's extremely urgent to keep cups 6 inches away from the mouse",
     {"type": "min_distance", "object": "mouse", "distance": "6 in", "severity": "critical"}),
    # declarative and topicalised forms
    ("The right third of the desk is where cups belong",
     {"type": "zone", "zone": "right_third", "mode": "inside"}),
    ("Bottom half: that's where mugs go.", {"type": "zone", "zone": "bottom_half", "mode": "inside"}),
    ("Thirty centimetres from the laptop is as far as cups may be placed",
     {"type": "max_distance", "object": "laptop", "distance": "30 cm"}),
    ("Ten cm from the phone is as close as a mug may get",
     {"type": "min_distance", "object": "cell phone", "distance": "10 cm"}),
    ("The table edge and the mugs should be 4 cm apart", {"type": "edge_margin", "distance": "4 cm"}),
    ("The laptop and every mug must be at least 20 cm apart",
     {"type": "min_distance", "object": "laptop", "distance": "20 cm"}),
    ("Mouse - keep cups 3 inches away", {"type": "min_distance", "object": "mouse", "distance": "3 in"}),
    ("Monitor: mugs 15 cm away (critical)",
     {"type": "min_distance", "object": "tv", "distance": "15 cm", "severity": "critical"}),
    # a distance between an object and the mugs is the object's distance rule
    ("Keep your phone at least 10 cm clear of any cup",
     {"type": "min_distance", "object": "cell phone", "distance": "10 cm"}),
    ("Keep the laptop 25 cm away from mugs",
     {"type": "min_distance", "object": "laptop", "distance": "25 cm"}),
    # zone negation words; mugs off the whole surface is a count of 0
    ("Keep the top half of the table free of cups",
     {"type": "zone", "zone": "top_half", "mode": "outside"}),
    ("The centre must remain cup-free", {"type": "zone", "zone": "center", "mode": "outside"}),
    ("Cups must never enter the right third",
     {"type": "zone", "zone": "right_third", "mode": "outside", "severity": "critical"}),
    ("Keep the left half clear of mugs", {"type": "zone", "zone": "left_half", "mode": "outside"}),
    ("Mugs are not permitted in the top half",
     {"type": "zone", "zone": "top_half", "mode": "outside"}),
    ("Cups are not allowed on the table", {"type": "count", "max": 0}),
    ("Mugs are banned from the desk", {"type": "count", "max": 0}),
    # stopping an action negates the action, not the bound
    ("Quit placing cups closer than 8 cm to the keyboard",
     {"type": "min_distance", "object": "keyboard", "distance": "8 cm"}),
    ("Stop leaving mugs within 5 cm of the edge", {"type": "edge_margin", "distance": "5 cm"}),
    # typos in zone words, object compounds, attribute cues
    ("mugs must stay in the lft half", {"type": "zone", "zone": "left_half", "mode": "inside"}),
    ("Keep mugs on the rigt side", {"type": "zone", "zone": "right_half", "mode": "inside"}),
    ("Mugs belong in the midle", {"type": "zone", "zone": "center", "mode": "inside"}),
    ("Keep cups 10 cm from the water bottle",
     {"type": "min_distance", "object": "bottle", "distance": "10 cm"}),
    ("Keep mugs 15 cm from the laptop keyboard",
     {"type": "min_distance", "object": "keyboard", "distance": "15 cm"}),
    ("We like mugs on coasters", {"type": "attribute", "prompt": "a mug on coasters"}),
    ("Travel mugs preferred", {"type": "attribute", "prompt": "a travel mug"}),
]  # fmt: skip

# (text, the slot the refusal names, words the reason holds)
REFUSALS: list[tuple[str, str, str]] = [
    ("Keep mugs 10 cm from the tablet", "object", "unknown object 'tablet'"),
    ("Heads up - mugs 10 cm from the lamp", "object", "unknown object 'lamp'"),
    ("Keep mugs 10 cm from the notepad", "object", "unknown object 'notepad'"),
    ("Keep mugs 10 blorps from the laptop", "unit", "unknown unit 'blorps'"),
    ("Mugs must be less than -3 cm from the laptop", "distance", "cannot be negative"),
    ("URGENT: mugs well away from the laptop", "distance", "no number with a unit"),
    ("Keep mugs 10 cm or 20 cm from the laptop", "distance", "two different distances"),
    ("Keep mugs between 10 and 20 cm from the laptop", "distance", "a range of distances"),
    ("Heads up - mugs 10 from laptops", "distance", "needs a unit"),
    ("Mugs need 10 cm", "object", "from nothing named"),
    ("Mugs should sit in the left quarter (critical)", "zone", "unknown zone 'left quarter'"),
    ("Heads up: at most mugs", "count", "number of mugs is missing"),
    ("Limit the number of mugs.", "count", "number of mugs is missing"),
    ("URGENT: only 2.5 mugs", "count", "whole number"),
    ("Put the laptop in the left half", "subject", "only mugs are judged"),
    ("Heads up - mugs must not be at least 10 cm from the laptop", "bound", "unclear"),
    ("Is 10 cm from the laptop enough?", "rule", "a question"),
    ("The mug was 12 cm from the laptop this morning.", "rule", "what was"),
    ("The weather is nice today", "rule", "no rule found"),
    ("Critical info: keep mugs 10 cm from the laptop", "severity", "two severities"),
    # moving an object, or a scene described, stays about the object
    ("Move the monitor 10 cm away from the mugs", "subject", "only mugs are judged"),
    ("Keep the laptop in the left half", "subject", "only mugs are judged"),
    ("The laptop is 30 cm from the mug", "subject", "only mugs are judged"),
    ("Is the middle where mugs should sit?", "rule", "a question"),
    ("Don't put too many mugs on the desk.", "rule", "no rule found"),
]


def _grammar(sentence: str) -> dict[str, Any]:
    return rule_from_dict(_read(_normalise(sentence))).model_dump(exclude={"id", "text"})


@pytest.mark.parametrize(("sentence", "expected"), NEW_PHRASINGS, ids=[s for s, _ in NEW_PHRASINGS])
def test_new_phrasings(sentence: str, expected: dict[str, Any]) -> None:
    rule = parse_rule(sentence)
    assert rule.model_dump(exclude={"id", "text"}) == structured(expected)
    assert rule.text == sentence


GRAMMAR_SENTENCES = [sentence for sentence, _ in EXAMPLES] + [row[0] for row in PHRASINGS]


@pytest.mark.parametrize("sentence", GRAMMAR_SENTENCES)
def test_the_slot_reader_agrees_with_the_grammar(sentence: str) -> None:
    """The grammar's meanings are the reference: on every sentence it reads, the slots agree."""
    assert rule_from_dict(read_rule(sentence)).model_dump(exclude={"id", "text"}) == _grammar(
        sentence
    )


@pytest.mark.parametrize(("text", "slot", "words"), REFUSALS, ids=[text for text, _, _ in REFUSALS])
def test_refusals_name_the_slot(text: str, slot: str, words: str) -> None:
    with pytest.raises(SlotRefusal) as refused:
        read_rule(text)
    assert refused.value.slot == slot
    assert words in str(refused.value)
    with pytest.raises(RuleParseError) as caught:
        parse_rule(text)
    assert words in caught.value.reason
    assert f"cannot read the rule {text!r}: " in str(caught.value)
    assert "Supported forms: " in str(caught.value)


@pytest.mark.parametrize(
    ("text", "readings"),
    [
        ("Keep mugs 10 cm from the laptop in the right half",
         ("'min_distance laptop 10 cm'", "'zone right_half inside'")),
        ("No more than three mugs, and they must be on coasters.",
         ("'count max 3'", "'attribute a mug on coasters'")),
        ("Keep mugs out of the centre and away from the edge by 5 cm",
         ("'edge_margin 5 cm'", "'zone center outside'")),
    ],
)  # fmt: skip
def test_two_readings_are_refused_with_both_named(text: str, readings: tuple[str, str]) -> None:
    with pytest.raises(RuleParseError) as caught:
        parse_rule(text)
    for reading in readings:
        assert reading in caught.value.reason


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("a quarter of a metre", ["0.25", "m"]),
        ("one and a half inches", ["1.5", "in"]),
        ("half an inch", ["0.5", "in"]),
        ("two point five cm", ["2.5", "cm"]),
        ("twenty-five millimetres", ["25", "mm"]),
        ("10cm", ["10", "cm"]),
        ('6"', ["6", "in"]),
        ("3/4 inch", ["0.75", "in"]),
        ("the right half of the desk", ["the", "right", "half", "of", "the", "desk"]),
        ("one another", ["one", "another"]),
    ],
)
def test_numbers_and_units_are_normalised(text: str, tokens: list[str]) -> None:
    assert normalise(text) == tokens


def test_typos_are_mended_once_and_only_into_known_words() -> None:
    assert normalise("keybord laptp mouce")[:3] == ["keyboard", "laptop", "mouse"]
    assert normalise("tablet") == ["tablet"]  # a known non-object is not a misspelt "table"
    assert normalise("kyebrd") == ["kyebrd"]  # two edits from "keyboard": stays unknown
    assert normalise("tenn cm") == ["tenn", "cm"]  # never a number
    assert normalise("lft rigt let") == ["left", "right", "let"]  # "let" is a word of its own
    assert normalise("it's that's") == ["it", "is", "that", "is"]  # a verb, not a possessive


@pytest.mark.parametrize(
    ("name", "detector_class"),
    [
        ("monitors", "tv"), ("displays", "tv"), ("screens", "tv"), ("computer monitor", "tv"),
        ("phones", "cell phone"), ("mobiles", "cell phone"), ("smartphones", "cell phone"),
        ("telephone", "cell phone"), ("keyboards", "keyboard"), ("mice", "mouse"),
        ("mouses", "mouse"), ("computer mice", "mouse"), ("laptops", "laptop"),
        ("computers", "laptop"), ("notebooks", "laptop"), ("pc", "laptop"), ("books", "book"),
        ("textbook", "book"),
    ],
)  # fmt: skip
def test_desk_object_synonyms(name: str, detector_class: str) -> None:
    assert canonical_object(name) == detector_class


def test_a_notepad_is_not_guessed() -> None:
    """A paper notepad may be detected as a book or as nothing: it is refused, not mapped."""
    with pytest.raises(UnknownObject):
        canonical_object("notepad")


def _corpus(name: str) -> list[dict[str, Any]]:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    return read_lines(path)


# The development files: the dev corpora, and the held-out rounds once they were measured.
RULE_FILES = ("rules_dev.jsonl", "rules_dev_2.jsonl", "rules_heldout_1.jsonl",
              "rules_heldout_2.jsonl", "rules_heldout_3.jsonl", "rules_heldout_4.jsonl")  # fmt: skip
NON_RULE_FILES = ("nonrules.jsonl", "nonrules_2.jsonl", "nonrules_heldout_2.jsonl",
                  "nonrules_heldout_3.jsonl", "nonrules_heldout_4.jsonl")  # fmt: skip


@pytest.mark.parametrize("name", RULE_FILES)
def test_dev_corpus_is_understood(name: str) -> None:
    score = score_rules(_corpus(name))
    assert score.share >= 0.95, score.misses


@pytest.mark.parametrize("name", NON_RULE_FILES)
def test_non_rules_are_refused(name: str) -> None:
    score = score_nonrules(_corpus(name))
    assert (score.total - score.right) / score.total <= 0.01, score.misses


def test_the_grammar_reads_what_the_slots_refuse() -> None:
    """An attribute noun the tagger does not know still parses, through the exact grammar."""
    with pytest.raises(SlotRefusal):
        read_rule("Mugs should have a smiley face")
    assert parse_rule("Mugs should have a smiley face").model_dump()["prompt"] == (
        "a mug with a smiley face"
    )


# Round 3 (issue #16): each category with sentences of its own.
ROUND_3_RULES: list[tuple[str, dict[str, Any]]] = [
    # policy declaratives and verbless rules stay rules
    ("Mugs 12 cm from monitors", {"type": "min_distance", "object": "tv", "distance": "12 cm"}),
    ("Mugs are kept 8 cm from the phone",
     {"type": "min_distance", "object": "cell phone", "distance": "8 cm"}),
    ("The mug is to be kept 10 cm from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "10 cm"}),
    # a comment clause flips no bound and tells no tense
    ("Keep the mug within 25 cm of the mouse so you don't need to stretch",
     {"type": "max_distance", "object": "mouse", "distance": "25 cm"}),
    ("Mugs should sit 6 cm or more from the edge, we don't want drops",
     {"type": "edge_margin", "distance": "6 cm"}),
    ("Keep mugs 12 cm apart, but not too strict about it", {"type": "spacing", "distance": "12 cm"}),
    # non-native forms and typos in bound words
    ("Mug must be not more far than 25 cm from the mouse.",
     {"type": "max_distance", "object": "mouse", "distance": "25 cm"}),
    ("Not more as two cups on the desk.", {"type": "count", "max": 2}),
    ("Cups is need a saucer.", {"type": "attribute", "prompt": "a mug on a saucer"}),
    ("The mugs need 6 cm one from other.", {"type": "spacing", "distance": "6 cm"}),
    ("Mug have to stand on the tray.", {"type": "attribute", "prompt": "a mug on a tray"}),
    ("mugs withn 20 cm of the mouse",
     {"type": "max_distance", "object": "mouse", "distance": "20 cm"}),
    ("atleast 2 mugs on the desk", {"type": "count", "min": 2}),
    ("keep cups ot of the right half", {"type": "zone", "zone": "right_half", "mode": "outside"}),
    ("spacing btwn cups 7 cm min", {"type": "spacing", "distance": "7 cm"}),
    ("Cups shoud stay on coasters", {"type": "attribute", "prompt": "a mug on coasters"}),
    # the desk and the time of a count are no numbers of mugs
    ("At most 2 mugs per desk.", {"type": "count", "max": 2}),
    ("No more than 5 cups on one desk at any time.", {"type": "count", "max": 5}),
    ("Mugs must not exceed 4 per table.", {"type": "count", "max": 4}),
    ("Only 3 mugs on a single desk at a time.", {"type": "count", "max": 3}),
    # severity labels and suffixes; an infinitive predicate
    ("Staff are reminded that cups must stay in the left half.",
     {"type": "zone", "zone": "left_half", "mode": "inside"}),
    ("Essential: keep mugs 10 cm from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "10 cm", "severity": "critical"}),
    ("Mandatory - mugs on coasters",
     {"type": "attribute", "prompt": "a mug on coasters", "severity": "critical"}),
    ("Keep mugs 10 cm from the phone, this is important.",
     {"type": "min_distance", "object": "cell phone", "distance": "10 cm", "severity": "critical"}),
    ("Cups to stay in the bottom half of the desk.",
     {"type": "zone", "zone": "bottom_half", "mode": "inside"}),
    ("Mugs must not be left within 15 cm of the monitor",
     {"type": "min_distance", "object": "tv", "distance": "15 cm"}),
    # a far/near gloss beside the half it names
    ("Mugs in the bottom half (near side)", {"type": "zone", "zone": "bottom_half", "mode": "inside"}),
]  # fmt: skip

ROUND_3_REFUSALS: list[tuple[str, str, str]] = [
    ("Could you tell me if the cups are on coasters", "rule", "a question"),
    ("Can you see whether my mug is near the keyboard?", "rule", "a question"),
    ("I wonder if mugs should be 10 cm from the laptop", "rule", "a question"),
    ("The cup is 20 cm from the monitor.", "rule", "describes the scene"),
    ("your mug has a sleeve", "rule", "describes the scene"),
    ("This mug is in the left half.", "rule", "describes the scene"),
    ("Mugs must have a sleeve and stand on a tray.", "rule", "two requirements"),
    ("Cups should be black and within 30 cm of the mouse", "rule", "two requirements"),
    ("The cup sings to 5 cm keyboards.", "rule", "no placement or requirement verb"),
    ("My mugs whisper near the laptop", "rule", "no placement or requirement verb"),
]


@pytest.mark.parametrize(("sentence", "expected"), ROUND_3_RULES, ids=[s for s, _ in ROUND_3_RULES])
def test_round_3_phrasings(sentence: str, expected: dict[str, Any]) -> None:
    assert parse_rule(sentence).model_dump(exclude={"id", "text"}) == structured(expected)


@pytest.mark.parametrize(
    ("text", "slot", "words"), ROUND_3_REFUSALS, ids=[text for text, _, _ in ROUND_3_REFUSALS]
)
def test_round_3_refusals(text: str, slot: str, words: str) -> None:
    with pytest.raises(SlotRefusal) as refused:
        read_rule(text)
    assert refused.value.slot == slot
    assert words in str(refused.value)
    with pytest.raises(RuleParseError) as caught:
        parse_rule(text)
    assert words in caught.value.reason


ROUND_4_RULES: list[tuple[str, dict[str, Any]]] = [
    # the far half is the top of the image (the camera looks across the desk from the sitter)
    ("Mugs should stay in the far half", {"type": "zone", "zone": "top_half", "mode": "inside"}),
    ("Keep cups on the near side of the desk",
     {"type": "zone", "zone": "bottom_half", "mode": "inside"}),
    # decimal comma, thousands separator, a fraction after the unit
    ("Very essential: keep mug minimum 1,5 m from the TV.",
     {"type": "min_distance", "object": "tv", "distance": "1.5 m", "severity": "critical"}),
    ("keep mugs 1,500 mm from the laptop",
     {"type": "min_distance", "object": "laptop", "distance": "1500 mm"}),
    ("the mug stays within a foot and a half of my book",
     {"type": "max_distance", "object": "book", "distance": "1.5 ft"}),
    # config notation
    ("// cup <-> keyboard: min 10 cm",
     {"type": "min_distance", "object": "keyboard", "distance": "10 cm"}),
    ("# mugs: 1..3 allowed", {"type": "count", "min": 1, "max": 3}),
    # words around the object that are no object
    ("Employees must keep coffee mugs at least 15 cm away from company-issued laptops.",
     {"type": "min_distance", "object": "laptop", "distance": "15 cm"}),
    ("Warning: cup must be at least 12 cm from the bottle of water.",
     {"type": "min_distance", "object": "bottle", "distance": "12 cm"}),
    ("Mugs must be 0.5 m or more from bottles of any kind.",
     {"type": "min_distance", "object": "bottle", "distance": "0.5 m"}),
    ("Mugs should be kept no more than 60 cm from the employee's monitor.",
     {"type": "max_distance", "object": "tv", "distance": "60 cm"}),
    ("For health and safety reasons, no more than two mugs are permitted per desk.",
     {"type": "count", "max": 2}),
    # English words are not mended into rule words ("looks" is no "books", "way" no "away")
    ("tip: keep mugs at least half a metre from the screen, looks way cleaner on camera",
     {"type": "min_distance", "object": "tv", "distance": "0.5 m", "severity": "info"}),
    # bounds
    ("Cups must keep a distance greater than or equal to 10 cm from the iPhone.",
     {"type": "min_distance", "object": "cell phone", "distance": "10 cm"}),
    ("Keep the mug up to 30 cm from the laptop, not further",
     {"type": "max_distance", "object": "laptop", "distance": "30 cm"}),
    ("Mug should stay inside a 20 cm radius of the keyboard",
     {"type": "max_distance", "object": "keyboard", "distance": "20 cm"}),
    ("Zero mugs allowed on the desk.", {"type": "count", "max": 0}),
    ("Separate mugs by at least 10 cm", {"type": "spacing", "distance": "10 cm"}),
    # conditions and comments
    ("When there are several mugs, keep them at least 20 cm apart so people don't grab the "
     "wrong one.", {"type": "spacing", "distance": "20 cm"}),
    ("heads up: keep cups 5cm from the desk edge, someone knocked theirs off again",
     {"type": "edge_margin", "distance": "5 cm"}),
    ("Remember: cups need to be 10 cm from the edge of the desk so they don't fall off!",
     {"type": "edge_margin", "distance": "10 cm"}),
    ("mugs must never touch - keep them 5 cm apart",
     {"type": "spacing", "distance": "5 cm", "severity": "critical"}),
    # one requirement described with "with"; the words of the attribute in its prompt
    ("I prefer my cup to be white with a handle.",
     {"type": "attribute", "prompt": "a white mug with a handle"}),
    ("Cups should be plain, with no cartoon characters on them.",
     {"type": "attribute", "prompt": "a plain mug without cartoon characters"}),
    # a colour that must not be there is what the mug is judged against
    ("Mugs must not be white",
     {"type": "attribute", "prompt": "a photo of a mug", "negative": "a white mug"}),
    ("No chipped mugs, they look sad.",
     {"type": "attribute", "prompt": "a photo of a mug", "negative": "a chipped mug"}),
    # slang, config keys, a negation in another clause than the bound
    ("mugs gotta stay 10cm min from the mouse",
     {"type": "min_distance", "object": "mouse", "distance": "10 cm"}),
    ("max_distance mug->laptop: 40 cm",
     {"type": "max_distance", "object": "laptop", "distance": "40 cm"}),
    ("URGENT: mugs at least 8 cm from the edge, we had three spills this week.",
     {"type": "edge_margin", "distance": "8 cm", "severity": "critical"}),
    ("mugs not right at the edge pls, 5cm min", {"type": "edge_margin", "distance": "5 cm"}),
    ("Don't let mugs hang out near the edge - keep 'em at least 5 cm in from it.",
     {"type": "edge_margin", "distance": "5 cm"}),
]  # fmt: skip

ROUND_4_REFUSALS: list[tuple[str, str, str]] = [
    ("Keep mugs 2 yards from the laptop", "unit", "unknown unit 'yards'"),
    ("Mugs should be 2 decimetres from the monitor.", "unit", "unknown unit 'decimetres'"),
    ("keep the mug 0 cm from the laptop lol", "distance", "a distance of 0"),
    ("Keep mugs 10 cm from the big spaceship", "object", "spaceship'"),
    ("The blue mug is in the right half of the desk.", "rule", "describes the scene"),
    ("A white mug with a lid is next to the keyboard.", "rule", "describes the scene"),
    ("MUG IS ON THE LEFT SIDE OF THE DESK NEXT TO THE MONITOR", "rule", "describes the scene"),
    ("In this photo the mug is in the right half of the desk.", "rule", "describes the scene"),
    ("Both cups are roughly 20 cm apart at the moment.", "rule", "describes the scene"),
    ("is the left half ok for mugs", "rule", "a question"),
    ("Mug 10 cm from phone, is it fine or not?", "rule", "a question"),
    ("We measured the mug at 18 cm from the keyboard during the audit.", "rule", "what was"),
    ("Last year the policy said 20 cm from laptops, but that was dropped.", "rule", "what was"),
    ("Mugs must be white and have a lid", "rule", "two requirements"),
    ("Keep mugs 10^3 mm from the laptop", "distance", "is a calculation"),
    ("Keep mugs within 1/0 cm of the laptop", "distance", "is a calculation"),
]


@pytest.mark.parametrize(("sentence", "expected"), ROUND_4_RULES, ids=[s for s, _ in ROUND_4_RULES])
def test_round_4_phrasings(sentence: str, expected: dict[str, Any]) -> None:
    assert parse_rule(sentence).model_dump(exclude={"id", "text"}) == structured(expected)


@pytest.mark.parametrize(
    ("text", "slot", "words"), ROUND_4_REFUSALS, ids=[text for text, _, _ in ROUND_4_REFUSALS]
)
def test_round_4_refusals(text: str, slot: str, words: str) -> None:
    with pytest.raises(SlotRefusal) as refused:
        read_rule(text)
    assert refused.value.slot == slot
    assert words in str(refused.value)
    with pytest.raises(RuleParseError) as caught:
        parse_rule(text)
    assert words in caught.value.reason


@pytest.mark.parametrize(
    ("word", "mended"),
    [("keybord", "keyboard"), ("shold", "should"), ("looks", "looks"), ("way", "way"),
     ("reach", "reach"), ("apply", "apply"), ("workstations", "workstation"), ("ones", "ones"),
     ("theirs", "theirs")],
)  # fmt: skip
def test_mending_leaves_english_words_alone(word: str, mended: str) -> None:
    assert mend_typo(word) == mended
