"""Natural-language placement rules (SPEC 4.3): a lark grammar over a small, normalised vocabulary.

Parsing is local and deterministic. A short pass lower-cases and tokenises the sentence, drops
politeness and trailing punctuation, and makes number words and unit spellings canonical; an Earley
grammar then reads the tokens and the parse tree becomes a structured rule of ``rules.model``. When
a sentence has several readings they must all give the same rule, otherwise it is refused rather
than guessed; so is anything the grammar does not cover.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)
from lark.visitors import CollapseAmbiguities
from pydantic import ValidationError

from rules.model import UNIT_SPELLINGS, Rule, Unit, ZoneName, rule_from_dict
from rules.slots import (
    HINTS,
    NUMBER,
    ONES,
    TENS,
    TYPOGRAPHIC_MARKS,
    WORD_HYPHEN,
    SlotRefusal,
    read_rule,
)
from rules.vocabulary import MUG_WORDS, UnknownObject, canonical_object

SUPPORTED_FORMS: tuple[str, ...] = (
    "Keep mugs at least 15 cm away from the laptop",
    "Mugs should be within 30 cm of the keyboard",
    "Keep mugs 5 cm from the edge of the table",
    "Keep mugs 10 cm apart",
    "No more than 2 mugs on the desk",
    "Between 1 and 3 mugs",
    "Mugs must stay in the right half",
    "Never put a mug in the center of the desk",
    "The mug should be on a coaster",
    "Mugs should have a lid",
    "Critical: keep mugs 20 cm away from the laptop",
)
_ZONES_HINT = "zones: left/right/top/bottom half, left/center/right third, center"

# the grammar also reads "dozen" on its own ("a dozen mugs")
_ONES = {**ONES, "dozen": 12}
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+n't|[a-z]+|\S")
_ASCII_PUNCTUATION = str.maketrans(TYPOGRAPHIC_MARKS)
_DROPPED = {"please", ","}
_TRAILING = {".", "!", "?", ";"}


def _phrase(words: str) -> str:
    return " ".join(f'"{word}"' for word in words.split())


# The grammar: keywords are reserved words (the basic lexer turns them into their own tokens), so
# NAME is any other word; object names are NAME+ and go through the vocabulary in the transformer.
_GRAMMAR = rf"""
start: [severity _severity_mark] _lead? clause _always?
!severity: "critical" | "important" | "warning" | "info"
// "CRITICAL: ...", "Warning - ...", "Critical! ..." (en and em dashes arrive as "-")
_severity_mark: ":" | "-" | "!"
_lead: "make" "sure" ["that"] | "ensure" ["that"] | "remember" "to"
_always: "at" "all" "times" | "always"

?clause: positive | negative | count | between | gap_from

// the verb may be left out: "Mug within 40 cm of the keyboard"
positive: _keep _subject pred
        | _subject [_be] pred
        | _subject _modal "have" thing -> with_attribute
negative: _dont _subject neg_pred
        | _subject _must_not neg_pred
        | _subject must_never neg_pred
        | "no" _mug neg_pred
must_never: "must" "never" _verb
count: _count_lead? count_bound _mug _count_tail?
     | "no" _mug _count_tail? -> no_count
between: _leave [_gap_of] _far_bound "between" _subject ["and" target]
// "keep a gap of 15 cm from the laptop": the gap is the mug's, so the mug is not named
gap_from: _leave _gap_of _far_bound _from target

_subject: [_det] _mug
_mug: {" | ".join(_phrase(words) for words in MUG_WORDS)}
_det: "the" | "a" | "an" | "any" | "all" ["the"] | "every" | "each" | "my" | "your" | "our"

_keep: ["always"] ("keep" | "put" | "place" | "position" | "set" | "leave")
_be: _modal [_adverb] _verb | ("is" | "are") [_adverb]
_modal: "must" | "should" | "shall" | "will"
      | ("need" | "needs" | "have" | "has" | "ought" | "is" | "are") "to"
_adverb: "always" | "only"
_verb: "be" | "stay" | "remain" | "sit" | "stand" | "rest" | "be" _participle
_participle: "kept" | "placed" | "positioned" | "put" | "located" | "set" | "spaced" | "left"
_dont: ("never" | "do" "not") _put | "avoid" ("putting" | "placing" | "keeping" | "leaving")
_put: "put" | "place" | "keep" | "leave" | "set" | "position"
_must_not: ("must" | _may) "not" _verb | _may "never" _verb | ("is" | "are") "not" "allowed"
_may: "should" | "shall" | "will" | "can" | "may"
_leave: "keep" | "leave" | "maintain"
_gap_of: "a" ("gap" | "distance" | "space") "of"

pred: _far_bound _from_or_clear_of target -> far
    | _near_bound _from target -> near
    | "within" distance ("of" | "from") target -> near
    | _closer "than" distance ("to" | "from") target -> near
    | ("no" | "not") _closer "than" distance ("to" | "from") target -> far
    | ("away" "from" | "clear" "of") target "by" _far_bound -> far
    | _far_bound "apart" ["from" _others] -> apart
    | _in zone -> inside
    | _out zone -> outside
    | "on" thing -> on_attribute
neg_pred: _more_than distance _from target -> far
        | _less_than distance _from target -> near
        | "within" distance ("of" | "from") target -> near
        | _closer "than" distance ("to" | "from") target -> near
        | _in zone -> inside

_far_bound: distance | _at_least distance | distance "or" "more" | _more_than distance
_near_bound: _at_most distance | distance "or" "less" | _less_than distance
_at_least: "at" "least" | "a" "minimum" "of" | "minimum" | "min"
_at_most: "at" "most" | ("no" | "not") ("more" | "further" | "farther") "than"
        | "a" "maximum" "of" | "maximum" | "max" | "up" "to"
_more_than: ("more" | "further" | "farther") "than" | "over"
_less_than: "less" "than" | "under"
_closer: "closer" | "nearer"
_from: ["away"] "from"
_from_or_clear_of: _from | "clear" "of"
distance: NUMBER unit | NUMBER -> bare_number
!unit: {" | ".join(f'"{unit}"' for unit in get_args(Unit))}

target: [_det] NAME+ -> object_target
      | [_det] _edge -> edge_target
      | _others -> others_target
_edge: [_surface] ("edge" | "edges") [("of" | "on") [_det] _surface]
_others: "each" "other" | "one" "another" | ["the"] "other" _mug

_in: "in" | "inside" ["of"] | "within" | "on"
_out: "out" "of" | "outside" ["of"] | "away" "from"
zone: [_det] zone_name [("of" | "on") [_det] (_surface | _picture)]
zone_name: "left" ["hand"] _half -> left_half
         | "right" ["hand"] _half -> right_half
         | ("top" | "upper") _half -> top_half
         | ("bottom" | "lower") _half -> bottom_half
         | "left" "third" -> left_third
         | _centre "third" -> center_third
         | "right" "third" -> right_third
         | _centre -> center
_half: "half" | "side"
_centre: "center" | "centre" | "middle"
_surface: "desk" | "table" | "surface" | "workspace"
_picture: "image" | "photo" | "picture"

// "clear" is a keyword ("10 cm clear of the laptop") that may still describe a thing ("a clear
// lid"); the "!" keeps it in the tree (the article is a subtree, which the prompt leaves out)
!thing: [article] (NAME | "clear")+
article: "a" | "an" | "the"

_count_lead: "there" (_modal "be" | "is" | "are") | ["only"] "allow" | [_det] _surface _modal "have"
count_bound: (_at_most | "only") NUMBER -> count_max
            | NUMBER "or" ("fewer" | "less") -> count_max
            | ("fewer" | "less") "than" NUMBER -> count_below
            | _at_least NUMBER -> count_min
            | NUMBER "or" "more" -> count_min
            | "more" "than" NUMBER -> count_above
            | "exactly" NUMBER -> count_exact
            | "between" NUMBER "and" NUMBER -> count_between
_count_tail: _place [_allowed] | _allowed [_place] | _modal "be" _place
_place: ("on" | "at") [_det] _surface | "in" [_det] _picture
_allowed: "allowed" | "at" "a" "time" | "at" "once"

NAME: /[a-z]+/
NUMBER: /\d+(\.\d+)?|\.\d+/
%ignore " "
"""
_PARSER = Lark(
    _GRAMMAR, parser="earley", lexer="basic", ambiguity="explicit", maybe_placeholders=False
)


class RuleParseError(ValueError):
    """A sentence that is not one of the supported forms; the message says why and lists them."""

    def __init__(self, text: str, reason: str = "it matches none of the supported forms") -> None:
        self.text = text
        self.reason = reason
        quoted = text if len(text) <= 80 else text[:77] + "..."
        forms = "; ".join(f'"{form}"' for form in SUPPORTED_FORMS)
        super().__init__(
            f"cannot read the rule {quoted!r}: {reason}. Supported forms: {forms} ({_ZONES_HINT})"
        )


class _Refusal(Exception):
    """Raised inside the transformer; becomes a RuleParseError once the text is known."""


@dataclass(frozen=True)
class _Gap:
    """A distance relation: at least (``min``) or at most (``max``) ``distance`` from ``target``."""

    bound: Literal["min", "max"]
    distance: dict[str, Any]
    target: tuple[str, str | None]


@dataclass(frozen=True)
class _Zone:
    zone: str
    mode: Literal["inside", "outside"]


_Predicate = _Gap | _Zone | dict[str, Any]
_ZONE_NAMES = frozenset(get_args(ZoneName))


def _gap_rule(gap: _Gap) -> dict[str, Any]:
    kind, name = gap.target
    if kind == "object":
        return {"type": f"{gap.bound}_distance", "object": name, "distance": gap.distance}
    if gap.bound == "max":
        what = "the edge" if kind == "edge" else "other mugs"
        raise _Refusal(f"only a minimum distance from {what} can be a rule")
    if kind == "edge":
        return {"type": "edge_margin", "distance": gap.distance}
    return {"type": "spacing", "distance": gap.distance}


def _rule(predicate: _Predicate) -> dict[str, Any]:
    if isinstance(predicate, _Gap):
        return _gap_rule(predicate)
    if isinstance(predicate, _Zone):
        return {"type": "zone", "zone": predicate.zone, "mode": predicate.mode}
    return predicate


def _negated(predicate: _Predicate) -> _Predicate:
    """Negation flips a bound ("never within 10 cm" = "at least 10 cm") or a zone's mode."""
    if isinstance(predicate, _Gap):
        return replace(predicate, bound="max" if predicate.bound == "min" else "min")
    assert isinstance(predicate, _Zone)  # the grammar negates only gaps and "in <zone>"
    return replace(predicate, mode="outside")


def _count(value: Token) -> int:
    number = float(value)
    if not number.is_integer():
        raise _Refusal(f"a number of mugs is a whole number, got {value}")
    return int(number)


def _prompt(relation: str, thing: Tree) -> dict[str, Any]:
    """CLIP prompt for "on a coaster" / "have a lid": singular nouns get "a"/"an"."""
    words = [str(child) for child in thing.children if isinstance(child, Token)]
    noun = " ".join(words)
    plural = words[-1].endswith("s") and not words[-1].endswith("ss")
    if not plural:
        noun = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    return {"type": "attribute", "prompt": f"a mug {relation} {noun}"}


def _items(children: list[Any]) -> list[Any]:
    return [child for child in children if child is not None]


class _ToRule(Transformer):
    """Parse tree -> the structured rule as a dict (what ``rule_from_dict`` takes)."""

    def start(self, children: list[Any]) -> dict[str, Any]:
        *severity, rule = _items(children)
        return {**rule, "severity": severity[0]} if severity else rule

    def severity(self, children: list[Token]) -> str:
        word = str(children[0])
        return "critical" if word == "important" else word

    def positive(self, children: list[Any]) -> dict[str, Any]:
        return _rule(_items(children)[-1])

    def negative(self, children: list[Any]) -> dict[str, Any]:
        *marks, predicate = _items(children)
        rule = _rule(_negated(predicate))
        return {**rule, "severity": "critical"} if marks else rule

    def must_never(self, _children: list[Any]) -> str:
        return "must never"

    def with_attribute(self, children: list[Any]) -> dict[str, Any]:
        return _prompt("with", _items(children)[-1])

    def on_attribute(self, children: list[Any]) -> dict[str, Any]:
        return _prompt("on", _items(children)[-1])

    def between(self, children: list[Any]) -> dict[str, Any]:
        distance, *target = _items(children)
        return _gap_rule(_Gap("min", distance, target[0] if target else ("others", None)))

    def gap_from(self, children: list[Any]) -> dict[str, Any]:
        return _gap_rule(self._gap("min", _items(children)))

    def far(self, children: list[Any]) -> _Gap:
        return self._gap("min", _items(children))

    def near(self, children: list[Any]) -> _Gap:
        return self._gap("max", _items(children))

    @staticmethod
    def _gap(bound: Literal["min", "max"], items: list[Any]) -> _Gap:
        # "away from X by 5 cm" names the target first; every other form names the distance first.
        distance = next(item for item in items if isinstance(item, dict))
        target = next(item for item in items if isinstance(item, tuple))
        return _Gap(bound, distance, target)

    def apart(self, children: list[Any]) -> _Gap:
        return _Gap("min", _items(children)[0], ("others", None))

    def distance(self, children: list[Any]) -> dict[str, Any]:
        number, unit = children
        return {"value": float(number), "unit": unit}

    def bare_number(self, children: list[Token]) -> dict[str, Any]:
        units = ", ".join(get_args(Unit))
        raise _Refusal(f"the distance {children[0]} needs a unit ({units}), e.g. '10 cm'")

    def unit(self, children: list[Token]) -> str:
        return str(children[0])

    def object_target(self, children: list[Any]) -> tuple[str, str]:
        return ("object", canonical_object(" ".join(_items(children))))

    def edge_target(self, _children: list[Any]) -> tuple[str, None]:
        return ("edge", None)

    def others_target(self, _children: list[Any]) -> tuple[str, None]:
        return ("others", None)

    def inside(self, children: list[Any]) -> _Zone:
        return _Zone(_items(children)[0], "inside")

    def outside(self, children: list[Any]) -> _Zone:
        return _Zone(_items(children)[0], "outside")

    def zone(self, children: list[Any]) -> str:
        return _items(children)[0]

    def __default__(self, data: str, children: list[Any], meta: Any) -> Any:
        if data in _ZONE_NAMES:
            return str(data)
        return super().__default__(data, children, meta)

    def count(self, children: list[Any]) -> dict[str, Any]:
        return {"type": "count", **_items(children)[0]}

    def no_count(self, _children: list[Any]) -> dict[str, Any]:
        return {"type": "count", "max": 0}

    def count_max(self, children: list[Token]) -> dict[str, int]:
        return {"max": _count(children[0])}

    def count_below(self, children: list[Token]) -> dict[str, int]:
        return {"max": _count(children[0]) - 1}

    def count_min(self, children: list[Token]) -> dict[str, int]:
        return {"min": _count(children[0])}

    def count_above(self, children: list[Token]) -> dict[str, int]:
        return {"min": _count(children[0]) + 1}

    def count_exact(self, children: list[Token]) -> dict[str, int]:
        number = _count(children[0])
        return {"min": number, "max": number}

    def count_between(self, children: list[Token]) -> dict[str, int]:
        return {"min": _count(children[0]), "max": _count(children[1])}


_TO_RULE = _ToRule()


def _numbers(tokens: list[str]) -> list[str]:
    """Number words to digits: "twenty five" -> "25", "a dozen" -> "12" ("one another" stays)."""
    out: list[str] = []
    index = 0
    while index < len(tokens):
        word = tokens[index]
        after = tokens[index + 1] if index + 1 < len(tokens) else ""
        if word in TENS:
            value = TENS[word]
            if 0 < _ONES.get(after, 0) < 10:
                value += _ONES[after]
                index += 1
            out.append(str(value))
        elif word == "a" and after == "dozen":
            out.append("12")
            index += 1
        elif word in _ONES and not (word == "one" and after == "another"):
            out.append(str(_ONES[word]))
        else:
            out.append(word)
        index += 1
    return out


def _units(tokens: list[str]) -> list[str]:
    """A unit spelling right after a number becomes its canonical unit ("inches" -> "in")."""
    return [
        UNIT_SPELLINGS.get(token, token) if index and NUMBER.fullmatch(tokens[index - 1]) else token
        for index, token in enumerate(tokens)
    ]


def _contraction(token: str) -> list[str]:
    """One spelling per negation for the grammar: "don't" -> "do not", "cannot" -> "can not"."""
    if token == "cannot":
        return ["can", "not"]
    if not token.endswith("n't"):
        return [token]
    return [{"can't": "can", "won't": "will"}.get(token, token[:-3]), "not"]


def _normalise(text: str) -> str:
    """The token string the grammar reads: lower case, canonical numbers and units, no "please"."""
    text = WORD_HYPHEN.sub(" ", text.translate(_ASCII_PUNCTUATION).lower())
    tokens = [
        word
        for token in _TOKEN.findall(text)
        for word in _contraction(token)
        if word not in _DROPPED
    ]
    while tokens and tokens[-1] in _TRAILING:
        tokens.pop()
    return " ".join(_units(_numbers(tokens)))


def _unexpected(error: UnexpectedInput) -> str:
    """The reason a person can act on: the first word (or character) the grammar could not take."""
    if isinstance(error, UnexpectedEOF):
        return "the sentence ends before the rule is complete"
    if isinstance(error, UnexpectedCharacters):
        return f"unexpected {error.char!r}"
    assert isinstance(error, UnexpectedToken)
    return f"unexpected {str(error.token)!r}"


def _read(tokens: str) -> dict[str, Any]:
    """Every reading of the sentence; they must agree on one rule."""
    tree = _PARSER.parse(tokens)
    readings: list[dict[str, Any]] = []
    refusals: list[Exception] = []
    for option in CollapseAmbiguities().transform(tree):
        try:
            reading = _TO_RULE.transform(option)
        except VisitError as error:
            if not isinstance(error.orig_exc, _Refusal | UnknownObject):
                raise
            refusals.append(error.orig_exc)
            continue
        if reading not in readings:
            readings.append(reading)
    if len(readings) > 1:
        raise _Refusal("it can be read as more than one rule")
    if not readings:
        raise refusals[0]
    return readings[0]


def _grammar_rule(text: str, tokens: str, slot_refusal: SlotRefusal) -> Rule:
    """The exact grammar, for a sentence the slot reader refused.

    A refusal the grammar gives for a reason (an unknown object, a bound the SPEC refuses) stands
    as it is; when the grammar only could not follow the words, the slot reader's reason (the
    slot that was missing or unknown) is added to it.
    """
    try:
        return rule_from_dict(_read(tokens))
    except UnexpectedInput as error:
        raise RuleParseError(text, f"{_unexpected(error)}; {slot_refusal}") from None
    except (_Refusal, UnknownObject) as error:
        raise RuleParseError(text, str(error)) from None
    except ValidationError as error:
        raise RuleParseError(text, _validation_reason(error)) from None


def _validation_reason(error: ValidationError) -> str:
    return str(error.errors()[0]["msg"]).removeprefix("Value error, ")


def parse_rule(text: str) -> Rule:
    """One sentence -> one structured rule, with ``text`` set to the sentence as written.

    The slot reader goes first (it reads every sentence of the grammar's tables to the grammar's
    rule, and in about a tenth of a millisecond); the grammar, about 5 ms a sentence, reads what
    the slot reader refuses, so its exact forms always parse.
    """
    tokens = _normalise(text)
    if not tokens:
        raise RuleParseError(text, "it is empty")
    try:
        rule = rule_from_dict(read_rule(text))
    except SlotRefusal as refusal:
        if refusal.final:
            raise RuleParseError(text, str(refusal)) from None
        rule = _grammar_rule(text, tokens, refusal)
    except ValidationError as error:
        rule = _grammar_rule(
            text, tokens, SlotRefusal("rule", _validation_reason(error), HINTS["rule"])
        )
    return rule.model_copy(update={"text": text})
