"""The slot reader: placement rules read by what a sentence names, not by the order it names it in.

The grammar of ``rules.parser`` reads the phrasings it lists exactly; people write others
("Heads up - cups 8 cm from the mouse", "a quarter of a metre", "mugs: 3 max"). This reader
normalises the text, tags the phrases it knows (severity, mug, object, quantity, bound, target,
zone, count and attribute words), gathers the tags into slots, and builds the rule from the slots
with one small typed pattern per rule type. When the slots fit two rules the sentence is refused
with both readings named; when a slot is missing or unknown the refusal names that slot and the
nearest supported form. Everything here is a pure function of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any, Literal

from rules.model import (
    DEFAULT_NEGATIVE,
    PHYSICAL_UNITS,
    UNIT_SPELLINGS,
    length_in_millimetres,
    to_millimetres,
)
from rules.vocabulary import (
    COCO_CLASSES,
    MUG_WORDS,
    NOT_OBJECTS,
    SYNONYMS,
    UnknownObject,
    canonical_object,
)

Bound = Literal["min", "above", "max", "below", "exact"]
Kind = Literal[
    "severity", "mug", "object", "surface", "number", "unit", "bound", "negation", "away",
    "prep", "gap", "edge", "others", "zone", "bad_zone", "count_of", "attribute",
    "attribute_cue", "colour", "modal", "unknown", "filler", "past", "question",
]  # fmt: skip


class SlotRefusal(ValueError):
    """A sentence the slots do not make a rule of: ``slot`` names the part, ``hint`` a form to use."""

    def __init__(self, slot: str, reason: str, hint: str, *, final: bool = False) -> None:
        self.slot = slot
        self.hint = hint
        # a sentence refused for what it is (a question, a described scene, two rules): the
        # grammar is not asked to read it after all
        self.final = final
        super().__init__(f"{slot}: {reason}; try {hint!r}")


# The nearest supported form for each slot a refusal may name.
HINTS = {
    "distance": "Keep mugs at least 15 cm away from the laptop",
    "max_distance": "Mugs should be within 30 cm of the keyboard",
    "object": "Keep mugs at least 15 cm away from the laptop",
    "edge": "Keep mugs 5 cm from the edge of the table",
    "spacing": "Keep mugs 10 cm apart",
    "count": "No more than 2 mugs on the desk",
    "zone": "Mugs must stay in the right half",
    "subject": "Keep mugs at least 15 cm away from the laptop",
    "severity": "Critical: keep mugs 20 cm away from the laptop",
    "rule": "Keep mugs at least 15 cm away from the laptop",
}

# ---------------------------------------------------------------------------------------------
# Normalising: one spelling for each mark, number and unit, and one-letter typos mended.

# Typographic quotes and dashes to ASCII (both readers); a dash between words ("CRITICAL—keep")
# is a separate mark, unlike the hyphen of "right-hand".
TYPOGRAPHIC_MARKS = {
    "’": "'", "‘": "'", "′": "'", "“": '"', "”": '"', "″": '"', "–": " - ", "—": " - ",
}  # fmt: skip
_ASCII = str.maketrans(
    {
        **TYPOGRAPHIC_MARKS,
        "−": "-", "½": " 1/2", "¼": " 1/4", "¾": " 3/4", "≤": " <= ", "≥": " >= ",
    }
)  # fmt: skip
_NEGATIVE = re.compile(r"(?<![\w.<])-(?=\d)")
# "1,5 m" is the decimal comma; "1,500 mm" the thousands separator
_DECIMAL_COMMA = re.compile(r"(?<![\d,.])(\d+),(\d{1,2})(?![\d,])")
_THOUSANDS = re.compile(r"(?<![\d,.])(\d{1,3}),(\d{3})(?![\d,])")
# config notation: "1..3" is a range, "cup <-> keyboard" a pair, "//" or "#" a comment mark
_RANGE_DOTS = re.compile(r"(\d)\s*\.\.\.?\s*(\d)")
_PAIR_ARROW = re.compile(r"\s*(<->|<=>|<-->|->|-->|=>|\u2194|\u2192)\s*")
_COMMENT_MARK = re.compile(r"^\s*(//+|#+)\s*")
_MIXED_FRACTION = re.compile(r"(\d+)\s+(\d+)\s*/\s*(\d+)")
_FRACTION = re.compile(r"(?<![\d.])(\d+)\s*/\s*(\d+)(?![\d.])")
WORD_HYPHEN = re.compile(r"(?<=[a-z])-(?=[a-z])")
_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+(?:'[a-z]+)?|<=|>=|[^\s\w]")
NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")

ONES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_FRACTION_WORDS = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}
_UNIT_WORDS = {**UNIT_SPELLINGS, "cms": "cm", "mms": "mm", "inchs": "in", "percentage": "%"}
# Words after a number that pint might take for a unit but people mean otherwise.
_NOT_UNITS = frozenset({"point", "points", "hand", "hands", "line", "lines", "link", "links"})


def _fraction(match: re.Match[str]) -> str:
    whole = float(match.group(1)) if match.re is _MIXED_FRACTION else 0.0
    numerator, denominator = (float(group) for group in match.groups()[-2:])
    if denominator == 0:
        return match.group(0)
    return f" {whole + numerator / denominator:g} "


def _contraction(token: str) -> list[str]:
    """One spelling of each negation ("don't" -> "do not"); a possessive "'s" is its own token."""
    if token == "cannot":
        return ["can", "not"]
    if token.endswith("n't"):
        return [{"can't": "can", "won't": "will"}.get(token, token[:-3]), "not"]
    if token.endswith("'s") and token[:-2] in _IS_CONTRACTIONS:
        return [token[:-2], "is"]  # "it's", "that's": the verb, not a possessive
    if token.endswith("'s"):
        return [token[:-2], "'s"]
    if "'" in token and token[0].isalpha():
        return [token.split("'")[0]]
    return [token]


_IS_CONTRACTIONS = frozenset(
    {"it", "that", "there", "here", "this", "what", "where", "who", "he", "she", "one"}
)


def tokens_of(text: str) -> list[str]:
    """Lower-case tokens with typographic marks, fractions, negatives and contractions made plain."""
    text = text.translate(_ASCII).lower()
    text = _COMMENT_MARK.sub("", text).replace("_", " ")  # "max_distance": config keys
    text = _PAIR_ARROW.sub(" to ", text)
    text = _RANGE_DOTS.sub(r"between \1 and \2", text)
    text = _DECIMAL_COMMA.sub(r"\1.\2", text)
    text = _THOUSANDS.sub(r"\1\2", text)
    text = _NEGATIVE.sub(" minus ", text)
    text = _MIXED_FRACTION.sub(_fraction, text)
    text = _FRACTION.sub(_fraction, text)
    text = WORD_HYPHEN.sub(" ", text)
    return [word for token in _TOKEN.findall(text) for word in _contraction(token)]


def _edits_within_one(word: str, known: str) -> bool:
    """One insertion, deletion, substitution or swap of neighbours turns ``word`` into ``known``."""
    if abs(len(word) - len(known)) > 1 or word == known:
        return False
    if len(word) == len(known):
        diffs = [index for index, (a, b) in enumerate(zip(word, known, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        first, second = diffs if len(diffs) == 2 else (0, 0)
        return (
            len(diffs) == 2
            and second == first + 1
            and word[first] == known[second]
            and word[second] == known[first]
        )
    short, long = sorted((word, known), key=len)
    return any(long[:index] + long[index + 1 :] == short for index in range(len(long)))


_SHORT_TARGETS = (
    "than", "edge", "from", "mugs", "cups", "away", "inch", "feet", "apart", "left", "right",
)  # fmt: skip
# Short English words one letter from a rule word that are words of their own, never mended.
_SHORT_WORDS = frozenset({"let", "eft"})


# A word the English word list has seen this often is a word, not a slip ("looks" is no misspelt
# "books", "way" no "away", "reach" no "each"); misspellings there are far rarer (0 to a few).
_ENGLISH_FLOOR = 100


@cache
def _english_frequency() -> Any:
    """pyspellchecker's English word frequencies (loaded once, about 0.3 s)."""
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1).word_frequency


def is_english(word: str) -> bool:
    return bool(_english_frequency()[word] >= _ENGLISH_FLOOR)


def prepare() -> None:
    """Build the phrase table and load the word list now (start-up), not in the first job."""
    _lexicon()
    _english_frequency()


@lru_cache(maxsize=4096)
def mend_typo(word: str) -> str:
    """The one known word a single slip away, else the word as written.

    Words of five letters or more are mended (shorter ones only by a missing letter), never
    numbers or number words, never a word the vocabulary knows as a non-object ("tablet" is not a
    misspelt "table"), never an English word of its own except into its singular
    ("workstations" -> "workstation"), and only when exactly one known word is that close: a
    word two edits from an object stays unknown, and is refused by name.
    """
    known = _known_words()
    if len(word) < 3 or not word.isalpha() or word in known or word in NOT_OBJECTS:
        return word
    if word in _SHORT_WORDS:
        return word
    if is_english(word):
        singular = word[:-1] if word.endswith("s") else word
        keep = singular not in known or singular in ONES or singular in _FILLER
        return word if keep else singular
    # a short word is only mended by the one letter it lacks, and only into a few rule words
    # ("thn" -> "than", "edg" -> "edge", "lft" -> "left", "rigt" -> "right"): "let" is a word,
    # not a misspelt "left"
    targets = _mendable_words() if len(word) >= 5 else _SHORT_TARGETS
    matches = [
        candidate
        for candidate in targets
        if (len(word) >= 5 or len(candidate) == len(word) + 1)
        and _edits_within_one(word, candidate)
    ]
    return matches[0] if len(matches) == 1 else word


# "the wrong one", "this one", "a new one": "one" stands for a thing, not a number
_ONE_AS_PRONOUN = frozenset(
    {"the", "this", "that", "wrong", "right", "same", "new", "old", "other", "which", "clean"}
)


def _number_at(words: list[str], index: int) -> tuple[float, int] | None:
    """The number that starts at ``index`` and how many words it takes, for number words."""
    word = words[index]
    after = words[index + 1 : index + 5] + [""] * 4
    fraction = _fraction_words(words, index)
    if fraction is not None:
        return fraction
    if word == "single" or (word == "a" and after[0] == "single"):
        return 1.0, 1 if word == "single" else 2
    if NUMBER.fullmatch(word):
        value, used = float(word), 1
    elif word in TENS:
        value, used = TENS[word], 1
        if 0 < ONES.get(after[0], 0) < 10:
            value, used = value + ONES[after[0]], 2
    elif (
        word in ONES
        and not (word == "one" and after[0] in {"another", "other"})
        and not (word == "one" and index and words[index - 1] in _ONE_AS_PRONOUN)
    ):
        value, used = ONES[word], 1
    elif word == "dozen" or (word == "a" and after[0] == "dozen"):
        return 12.0, 1 if word == "dozen" else 2
    elif word == "a" and after[0] == "couple" and after[1] == "of":
        return 2.0, 3
    else:
        return None
    rest = words[index + used : index + used + 4] + [""] * 4
    decimal = str(ONES[rest[1]]) if ONES.get(rest[1], 10) < 10 else rest[1]
    if rest[0] == "point" and decimal.isdigit():
        return float(f"{value:g}.{decimal}"), used + 2
    if rest[0] == "and" and rest[1] in {"a", "one"} and rest[2] in _FRACTION_WORDS:
        return value + _FRACTION_WORDS[rest[2]], used + 3
    if rest[0] == "and" and rest[1] == "three" and rest[2] in {"quarter", "quarters"}:
        return value + 0.75, used + 3
    return value, used


def _fraction_words(words: list[str], index: int) -> tuple[float, int] | None:
    """ "half a metre", "a quarter of an inch", "three quarters of a foot", "a foot": before a unit."""
    phrase = words[index : index + 5] + [""] * 5
    start = 1 if phrase[0] in {"a", "an", "one"} and phrase[1] in _FRACTION_WORDS else 0
    value, used = 1.0, start
    if phrase[0] == "three" and phrase[1] in {"quarter", "quarters"}:
        value, used = 0.75, 2
    elif phrase[start] in _FRACTION_WORDS:
        value, used = _FRACTION_WORDS[phrase[start]], start + 1
    elif phrase[0] not in {"a", "an"}:
        return None
    if used and phrase[used] == "of":
        used += 1
    if used and phrase[used] in {"a", "an"}:
        used += 1
    elif not used:
        used = 1  # "a foot": the article is the number
    return (value, used) if phrase[used] in _UNIT_WORDS and phrase[used].isalpha() else None


# Fixed slips and non-native forms of bound and verb words, rewritten before anything else:
# run-together bounds ("atleast"), dropped letters the one-edit mender cannot place ("withn" is
# one letter from "with" too), "more far" for "further", "more as" for "more than", "is need".
_REWRITES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("withn",): ("within",), ("whithin",): ("within",), ("wihtin",): ("within",),
    ("witin",): ("within",), ("atleast",): ("at", "least"), ("atmost",): ("at", "most"),
    ("btwn",): ("between",), ("betwen",): ("between",), ("shoud",): ("should",),
    ("shuold",): ("should",), ("sould",): ("should",), ("shoudl",): ("should",),
    ("ot", "of"): ("out", "of"), ("otu", "of"): ("out", "of"), ("more", "far"): ("further",),
    ("more", "farther"): ("further",), ("more", "further"): ("further",),
    ("more", "close"): ("closer",), ("more", "near"): ("nearer",), ("more", "as"): ("more", "than"),
    ("less", "as"): ("less", "than"), ("fewer", "as"): ("fewer", "than"),
    ("is", "need"): ("needs",), ("are", "need"): ("need",), ("is", "needing"): ("needs",),
    ("one", "from", "other"): ("each", "other"), ("one", "from", "another"): ("each", "other"),
    ("one", "from", "the", "other"): ("each", "other"), ("outta",): ("out", "of"),
    ("outa",): ("out", "of"), ("gotta",): ("must",), ("right", "at"): ("at",),
    ("within", "reach", "of"): ("near",), ("within", "reach"): ("near",),
    # falling off is no "away"; a coffee stain is no coffee mug
    ("fall", "off"): ("fall",), ("falls", "off"): ("falls",), ("falling", "off"): ("falling",),
    ("knocked", "off"): ("knocked",), ("knock", "off"): ("knock",),
    ("coffee", "stains"): ("stains",), ("coffee", "stain"): ("stain",),
    # "right next to": the intensifier, not the right half
    ("right", "next", "to"): ("next", "to"), ("right", "beside"): ("beside",),
    ("right", "by"): ("by",), ("right", "near"): ("near",), ("right", "in", "front"): ("in", "front"),
    # the time a count holds is no number of mugs
    ("at", "any", "time"): (), ("at", "any", "one", "time"): (), ("at", "a", "time"): (),
    ("at", "any", "given", "time"): (), ("at", "once"): (), ("at", "one", "time"): (),
}  # fmt: skip
_COUNT_PLACES = frozenset({"desk", "table", "workstation", "workspace", "desks", "tables"})


def _rewrite(words: list[str]) -> list[str]:
    """The fixed rewrites, and the desk a count is made on: "3 per desk", "on a single desk"."""
    out: list[str] = []
    index = 0
    while index < len(words):
        for size in (4, 3, 2, 1):
            phrase = tuple(words[index : index + size])
            if len(phrase) == size and phrase in _REWRITES:
                out.extend(_REWRITES[phrase])
                index += size
                break
        else:
            word, nxt = words[index], (words[index + 1] if index + 1 < len(words) else "")
            if word == "per" and nxt in _COUNT_PLACES:
                out.extend(["on", "the"])  # "3 per desk": the desk, not a unit
            elif word in {"one", "single"} and nxt in _COUNT_PLACES:
                if out[-1:] == ["a"]:
                    out.pop()  # "on a single desk", "on one desk": the desk, not a count
            else:
                out.append(word)
            index += 1
    return out


def normalise(text: str) -> list[str]:
    """Tokens the tagger reads: typos mended, number phrases as digits, units canonical."""
    words = [mend_typo(word) for word in _rewrite(tokens_of(text))]
    out: list[str] = []
    index = 0
    while index < len(words):
        number = _number_at(words, index)
        if number is None:
            out.append(words[index])
            index += 1
            continue
        value, used = number
        unit, *tail = words[index + used : index + used + 4] + [""] * 4
        if unit in _UNIT_WORDS and tail[0] == "and" and tail[1] in {"a", "an", "one"}:
            # "a foot and a half", "an inch and a quarter": the fraction after the unit
            fraction = _FRACTION_WORDS.get(tail[2])
            if fraction is not None:
                out.extend([f"{value + fraction:g}", unit])
                index += used + 4
                continue
        out.append(f"{value:g}")
        index += used
    out = _unit_beside_number(out)
    return [
        _UNIT_WORDS.get(token, token) if position and NUMBER.fullmatch(out[position - 1]) else token
        for position, token in enumerate(out)
    ]


def _unit_beside_number(words: list[str]) -> list[str]:
    """ "ten or more centimetres" -> "10 centimetres or more": the unit next to its number."""
    out = list(words)
    for index in range(len(out) - 3):
        number, first, second, unit = out[index : index + 4]
        if (
            NUMBER.fullmatch(number)
            and first == "or"
            and second in {"more", "less", "fewer", "so", "further", "closer"}
            and unit in _UNIT_WORDS
        ):
            out[index + 1 : index + 4] = [unit, first, second]
    return out


# ---------------------------------------------------------------------------------------------
# Tagging: the longest known phrase at each place.


@dataclass(frozen=True)
class Tag:
    kind: Kind
    value: str
    index: int
    size: int = 1


# kind value: phrase | phrase | ...  (a value ending in "!" is a bound no "not" flips)
_PHRASE_TABLE = """
severity critical: critical | crit | important | urgent | mandatory | essential | crucial | vital
    | high priority | top priority | priority high | severity critical | severity high
    | very important | safety critical | a must | non negotiable
severity warning: warning | warn | heads up | caution | attention | medium priority
    | priority medium | severity warning | severity medium | alert
severity info: info | fyi | note | nb | tip | hint | suggestion | optional | low priority
    | priority low | nice to have | informational | advisory | minor | severity info
    | severity low | for information | just so you know | reminder | preferably | ideally
    | if possible | suggested | recommended | recommendation
bound min!: at least | a minimum of | minimum | min | or more | or further | or farther
    | no less than | not less than | never less than | no closer than | not closer than
    | never closer than | no nearer than | not nearer than | never nearer than | no closer
    | never closer | not closer | no fewer than | not fewer than | never fewer than
    | at minimum | >= | minimum of | min of | or greater | and more | or above | as close as
    | greater than or equal to | more than or equal to | further than or equal to
    | as near as
bound above!: not within | never within | nowhere within | nowhere near | not near | never near
    | not close to | never close to | >
bound max!: at most | a maximum of | maximum | max | or less | or fewer | or closer | or nearer
    | up to | no more than | not more than | never more than | no further than
    | no farther than | not further than | not farther than | never further than
    | never farther than | at the most | at maximum | tops | <= | maximum of | max of
    | no greater than | not over | never over | limit | limited to | limit of | cap
    | capped at | or under | or below | and no more | no more | only | just | as far as
    | less than or equal to | closer than or equal to | not further | no further | not farther
    | no farther | never further | never farther
    | as far away as | the furthest | the farthest
bound below!: <
bound above: more than | further than | farther than | over | beyond | exceed | exceeds
    | exceeding | greater than | longer than | above | further
bound below: less than | fewer than | under | closer than | nearer than | shorter than | below
    | closer | nearer
bound max: within | near | close to | next to | nearby | beside | radius | radius of
bound exact!: exactly | precisely
negation not: not | never | no | avoid | avoiding | forbidden | prohibited | banned | disallowed
    | off limits | nowhere | none | stop | stop putting | stop placing | quit | refrain from
    | cease
away away: away | away from | out of | outside | outside of | keep out | stay out | kept out
    | clear of | off | free of | free from
prep from: from
prep of: of
prep to: to
prep by: by
prep and: and
prep than: than
prep between: between | between them and | between it and | between the mug and
    | between the mugs and | between mugs and | between each mug and
gap distance: distance
gap spread: spacing | spaced | separated | separation | spread out | spaced out | space out
    | spread | spaced apart | separate | separate them by | separated by
gap gap: gap | space | clearance | buffer | room | clear | free space | breathing room | padding
edge edge: edge | edges | margin | margins | border | borders | rim | inset | boundary
    | boundaries | perimeter | side | sides | end | ends | outline
others others: apart | each other | one another | between them | the others | the next one
    | the next | one other | each others | between each other | mug to mug | cup to cup
    | any other | neighbours | neighbors | every pair of | each pair of | any pair of | pair of
count_of count: number of | count | total of | amount of | quantity of
attribute_cue on: on | onto | atop | on top of | upon
attribute_cue with: with | have | has | having | fitted with
attribute_cue without: without | lack | lacking | missing
modal modal: must | should | shall | need | needs | has to | have to | ought | keep | make sure
    | ensure | always | require | requires | use | put | place | give | prefer | prefers | preferred
    | we like | i like | we want | i want | we would like | i would like | we favour | we favor
filler filler: around | about | roughly | approximately | approx | circa | some | to avoid
    | so as to avoid | in order to avoid | to prevent | could you | can you
    | would you | will you | mug centre | mug center | mugs centre | mug 's centre
    | mug 's center | centre of the mug | center of the mug | centre of each mug
    | center of each mug | mug 's position | is where | are where | is the place where
    | is the spot where | is the area where
surface surface: desk | desks | table | tables | surface | workspace | workstation | worktop
    | counter | countertop | tabletop | image | photo | picture | frame | area | desktop
    | work surface | work area
bad_zone corner: corner | corners | quadrant | quarter
bad_zone half: half
bad_zone third: third
past past: was | were | had | yesterday | this morning | last time | earlier | used to
    | last year | last month | last week | previously | formerly | in the past | back then
question ?: what | why | how | which | who | when | where | does | is it | are there
mug mug: teacup | teacups | tea cup | tea cups | coffee | coffees
"""


def _phrases() -> dict[tuple[str, ...], tuple[Kind, str]]:
    """Every phrase the tagger knows, with what it stands for: the table, zones, mugs, attributes."""
    table: dict[str, tuple[Kind, str]] = {}

    def add(kind: Kind, value: str, *phrases: str) -> None:
        for phrase in phrases:
            table[phrase] = (kind, value)

    for entry in re.split(r"\n(?=\S)", _PHRASE_TABLE.strip()):
        head, _, body = entry.partition(":")
        kind, value = head.split()
        add(kind, value, *(phrase.strip() for phrase in body.split("|")))  # type: ignore[arg-type]
    for zone, words in _ZONE_PHRASES.items():
        add("zone", zone, *words)
    for side in _SIDES:
        for shape in _NOT_ZONE_SHAPES:
            add("bad_zone", f"{side} {shape}", f"{side} {shape}")
    for side in ("top", "bottom", "upper", "lower", "front", "back", "rear"):
        add("bad_zone", f"{side} third", f"{side} third")
    # the camera looks across the desk from the sitter's side: the far half is the top of the image
    for side, zone in (("far", "top_half"), ("back", "top_half"), ("rear", "top_half"),
                       ("near", "bottom_half"), ("front", "bottom_half")):  # fmt: skip
        add("zone", zone, *(f"{side} {shape}" for shape in ("half", "side", "part", "area", "end")))
    for mug in MUG_WORDS:
        add("mug", mug, mug)
        for lead in _OTHER_MUG_LEADS:
            add("others", "others", f"{lead} {mug}")
        add("others", "others", f"{mug} to {mug}", f"{mug} from {mug}", f"{mug} out by")
        add("away", "away", f"{mug} free", f"free of {mug}", f"free from {mug}")
    add("colour", "colour", *_COLOURS)
    for noun in _ON_NOUNS + _WITH_NOUNS:
        add("attribute", noun, noun, noun + "s")
    return {tuple(phrase.split()): meaning for phrase, meaning in table.items()}


_SIDES = (
    "left", "right", "top", "bottom", "upper", "lower", "centre", "center", "middle", "front",
    "back", "rear", "far", "near",
)  # fmt: skip
_NOT_ZONE_SHAPES = (
    "quarter", "quadrant", "corner", "corners", "fourth", "fifth", "strip", "column", "row",
    "edge", "edges", "border", "margin",
)  # fmt: skip
_OTHER_MUG_LEADS = (
    "other", "another", "the other", "neighbouring", "neighboring", "adjacent", "nearby",
    "the next", "the nearest", "any two", "each other", "pair of",
)  # fmt: skip
_ZONE_PHRASES = {
    "left_half": [f"left {hand}{shape}" for hand in ("", "hand ") for shape in
                  ("half", "side", "part", "portion", "region", "section", "zone", "area")]
    + ["left", "lefthand side", "left of the desk", "left hand"],
    "right_half": [f"right {hand}{shape}" for hand in ("", "hand ") for shape in
                   ("half", "side", "part", "portion", "region", "section", "zone", "area")]
    + ["right", "righthand side", "right hand"],
    "top_half": [f"{side} {shape}" for side in ("top", "upper") for shape in
                 ("half", "part", "portion", "region", "section", "area", "side")] + ["top"],
    "bottom_half": [f"{side} {shape}" for side in ("bottom", "lower") for shape in
                    ("half", "part", "portion", "region", "section", "area", "side")] + ["bottom"],
    "left_third": ["left third", "leftmost third", "left hand third"],
    "right_third": ["right third", "rightmost third", "right hand third"],
    "center_third": [f"{side} third" for side in ("center", "centre", "middle", "central")],
    "center": [f"{side}{shape}" for side in ("center", "centre", "middle", "central", "dead center")
               for shape in ("", " part", " area", " region", " section", " zone", " spot")],
}  # fmt: skip
_COLOURS = (
    "white", "black", "red", "blue", "green", "yellow", "grey", "gray", "brown", "pink", "purple",
    "clean", "empty", "closed", "covered", "lidded", "insulated", "ceramic", "upright", "full",
    "spill proof", "spillproof", "leak proof", "leakproof", "travel", "plain", "patterned",
    "printed", "branded", "labelled", "labeled", "personalised", "personalized", "matching",
    "metal", "steel", "stainless steel", "porcelain", "plastic", "reusable", "disposable",
    "chipped", "cracked", "dark", "transparent", "opaque", "washed",
)  # fmt: skip
# Things a mug stands on, and things it has: the relation the CLIP prompt uses.
_ON_NOUNS = ("coaster", "saucer", "mat", "placemat", "tray", "pad", "napkin", "doily", "trivet")
_WITH_NOUNS = (
    "lid", "sleeve", "handle", "cover", "straw", "cap", "label", "logo", "spoon lid", "slogan",
    "sticker", "decal", "name tag", "name", "pattern", "design", "branding", "emblem", "lettering",
    "character", "picture", "print", "stain",
)  # fmt: skip


@cache
def _lexicon() -> dict[tuple[str, ...], tuple[Kind, str]]:
    return _phrases()


@cache
def _longest_phrase() -> int:
    return max(len(phrase) for phrase in _lexicon())


def _object_names() -> dict[tuple[str, ...], str]:
    """Every spelling of an object the vocabulary knows (with plurals) -> its detector class."""
    names: dict[tuple[str, ...], str] = {}
    for name in (*COCO_CLASSES, *SYNONYMS):
        for spelling in (name, _plural(name)):
            canonical = canonical_object(spelling)
            if canonical != "cup" and name not in {"table", "desk", "dining table"}:
                names[tuple(spelling.split())] = canonical
    return names


def _plural(name: str) -> str:
    if name.endswith("mouse"):
        return name[:-5] + "mice"
    if name.endswith(("s", "sh", "ch", "x")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in set("aeiou"):
        return name[:-1] + "ies"
    return name + "s"


@cache
def _objects() -> dict[tuple[str, ...], str]:
    return _object_names()


@cache
def _known_words() -> frozenset[str]:
    words = {word for phrase in (*_lexicon(), *_objects()) for word in phrase}
    return frozenset(words | set(_UNIT_WORDS) | set(ONES) | set(TENS) | set(_FILLER))


@cache
def _mendable_words() -> tuple[str, ...]:
    """The known words a typo may be mended to: the rule words and object names, not numbers."""
    numbers = set(ONES) | set(TENS) | set(_FRACTION_WORDS)
    words = {word for phrase in (*_lexicon(), *_objects()) for word in phrase} | set(_UNIT_WORDS)
    return tuple(sorted(word for word in words if len(word) >= 4 and word not in numbers))


# Words that carry no slot: they may stand anywhere without making a sentence unreadable.
_FILLER = frozenset(
    """
    the a an any all every each my your our their its this that these those there it they them
    we you i me us at in inside into within for while when times time once do does did make
    sure that be been being is are was were am get got go goes stay stays stayed sits sit keep
    kept placed put set positioned located left leave rest rests lie lies always only also too
    very please rule rules thanks thank so ok okay if from than then absolutely really
    extremely super quite truly highly especially particularly totally enter enters entering
    allowed permitted stand stands standing remain remains remaining belong belongs sitting
    resting reside resides live lives gets placing present reminded folks everyone staff team guys people
    inclusive exclusive
    """.split()  # noqa: SIM905
)


def tag(words: list[str]) -> list[Tag]:
    """Known phrases (longest first), objects, numbers and units; other words as ``unknown``."""
    lexicon, objects, longest = _lexicon(), _objects(), _longest_phrase()
    tags: list[Tag] = []
    index = 0
    while index < len(words):
        word = words[index]
        if NUMBER.fullmatch(word):
            tags.append(Tag("number", word, index))
            index += 1
            continue
        if word in _UNIT_VALUES and index and NUMBER.fullmatch(words[index - 1]):
            tags.append(Tag("unit", word, index))
            index += 1
            continue
        if _not_a_zone(words, index):
            index += 1
            continue
        for size in range(min(longest, len(words) - index), 0, -1):
            phrase = tuple(words[index : index + size])
            if phrase in objects and (size > 1 or phrase not in lexicon):
                last = tags[-1] if tags else None
                if last is not None and last.kind == "object" and last.index + last.size == index:
                    # a compound names its last noun: "TV remote" is a remote, "laptop keyboard"
                    # a keyboard
                    tags[-1] = Tag("object", objects[phrase], last.index, last.size + size)
                else:
                    tags.append(Tag("object", objects[phrase], index, size))
                break
            if phrase in lexicon:
                kind, value = lexicon[phrase]
                tags.append(Tag(kind, value, index, size))
                break
        else:
            size = 1
            if word.isalpha() and word not in _FILLER:
                tags.append(Tag("unknown", word, index))
        index += size
    return tags


_UNIT_VALUES = frozenset(UNIT_SPELLINGS.values())
_BE = frozenset({"be", "been", "being", "is", "are", "get", "gets", "got"})
_ZONE_SHAPES = frozenset(
    {"half", "side", "part", "portion", "region", "section", "zone", "area", "third", "hand"}
)


def _not_a_zone(words: list[str], index: int) -> bool:
    """ "must not be left within 25 cm": "left" after "be" is the verb, not the left half (unless
    a zone shape follows); "a lid on top" puts the lid on the mug, not the mug in the top half."""
    word, before = words[index], words[max(index - 2, 0) : index]
    after = words[index + 1] if index + 1 < len(words) else ""
    if word == "left" and before[-1:] and before[-1] in _BE:
        return after not in _ZONE_SHAPES and after != "of"
    if word == "top" and before[-1:] == ["on"] and after != "of":
        noun = before[0] if len(before) == 2 else ""
        return noun in _WITH_NOUNS or noun.rstrip("s") in _WITH_NOUNS
    return False


# ---------------------------------------------------------------------------------------------
# Slots: what the tags say, gathered by kind.


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str | None
    index: int

    def key(self) -> tuple[float, str | None]:
        """Equal for one length however written: "10 cm" and "100 mm" are one quantity."""
        if self.unit in PHYSICAL_UNITS:
            return (round(to_millimetres(self.value, self.unit), 6), "mm")
        return (self.value, self.unit)

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}" if self.unit else f"{self.value:g}"


@dataclass
class Slots:
    severities: list[str] = field(default_factory=list)
    must_never: bool = False
    distances: list[Quantity] = field(default_factory=list)
    numbers: list[Quantity] = field(default_factory=list)
    negative: bool = False
    unknown_units: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    subject_objects: list[str] = field(default_factory=list)
    unknown_objects: list[str] = field(default_factory=list)
    mugs: list[int] = field(default_factory=list)
    edge: bool = False
    others: bool = False
    between_mugs: bool = False
    zones: list[str] = field(default_factory=list)
    bad_zones: list[str] = field(default_factory=list)
    bounds: list[tuple[str, int]] = field(default_factory=list)
    negations: int = 0
    negated_clauses: list[int] = field(default_factory=list)  # the clause of each negation
    clause_of: list[int] = field(default_factory=list)
    away: int = 0
    gap: bool = False
    gap_words: list[str] = field(default_factory=list)
    count_of: bool = False
    no_mug: bool = False
    range_of_numbers: bool = False
    attributes: list[str] = field(default_factory=list)
    things: list[str] = field(default_factory=list)
    attribute_cues: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)
    deontic: bool = False
    question: bool = False
    past: bool = False
    surface: bool = False
    apart: bool = False
    mug_as_target: bool = False
    moves: bool = False
    vague: bool = False
    describes: str = ""
    arithmetic: str = ""  # "10 ^ 3": a sum the reader does not work out
    verb: str = ""
    predicate_colour: bool = False
    no_colour: bool = False
    requirements: list[int] = field(default_factory=list)  # where colours and attributes are
    ands: list[int] = field(default_factory=list)  # where "and" joins words
    alternatives: bool = False


_TARGET_LEADS = frozenset({"from", "of", "to", "by", "and", "than", "between"})


_ARITHMETIC = frozenset({"^", "/", "*", "+", "x", "×"})


def _read_quantities(words: list[str], tags: list[Tag], slots: Slots) -> None:
    """Numbers with their units; a word after a number that pint reads as a length converts."""
    for position, item in enumerate(tags):
        if item.kind != "number":
            continue
        after = tags[position + 1] if position + 1 < len(tags) else None
        negative = item.index > 0 and words[item.index - 1] == "minus"
        slots.negative |= negative
        operator = words[item.index - 1] if item.index > 1 else ""
        if operator in _ARITHMETIC and NUMBER.fullmatch(words[item.index - 2]):
            # "10^3 mm", "1/0 cm": arithmetic is not read, and never half-read as "3 mm"
            slots.arithmetic = " ".join(words[item.index - 2 : item.index + 1])
        value = float(item.value)
        if after is not None and after.kind == "unit" and after.index == item.index + 1:
            slots.distances.append(Quantity(value, UNIT_SPELLINGS[after.value], item.index))
            continue
        next_word = words[item.index + 1] if item.index + 1 < len(words) else ""
        millimetres = None if next_word in _NOT_UNITS else length_in_millimetres(next_word)
        if after is not None and after.kind == "unknown" and after.index == item.index + 1:
            if millimetres is None:
                slots.unknown_units.append(next_word)
            else:
                slots.distances.append(Quantity(round(value * millimetres, 6), "mm", item.index))
            continue
        slots.numbers.append(Quantity(value, None, item.index))


_DETERMINERS = frozenset({"the", "a", "an", "any", "all", "every", "each", "my", "your", "our"})
_TARGET_WORDS = _TARGET_LEADS | {"near", "beside", "around", "within", "away", "'s"}


def _is_target(words: list[str], index: int) -> bool:
    """Whether the word at ``index`` follows a preposition (articles and adjectives between)."""
    return _target_lead(words, index) is not None


def _target_lead(words: list[str], index: int) -> int | None:
    """Where the preposition before the word at ``index`` is (articles and adjectives between)."""
    for back in range(index - 1, max(index - 4, -1), -1):
        word = words[back]
        if word in _TARGET_WORDS:
            return back
        if word in _DETERMINERS or (word.isalpha() and word not in _known_words()):
            continue
        return None
    return None


def _unknown_objects(words: list[str], tags: list[Tag]) -> list[str]:
    """The unknown words that stand where the rule's object would ("from the lamp").

    Not an object: a modifier of a known object after it ("company issued laptops"), what
    follows "of" after an object or a verb ("bottles of any kind", "a bottle of water", "be of
    colour black"), one side of an "and" that joins no mug or object ("for health and safety
    reasons", "boys and girls"), or the owner of something no rule measures to ("the owner's
    name tag").
    """
    kinds = {
        position: item for item in tags for position in range(item.index, item.index + item.size)
    }
    found: list[str] = []
    for item in tags:
        if item.kind != "unknown":
            continue
        lead = _target_lead(words, item.index)
        head = kinds.get(item.index + 1)
        if head is not None and head.kind == "unknown":
            continue  # the last word of "the big spaceship" names it
        if lead is None or _object_follows(words, kinds, item.index):
            continue
        before = kinds.get(lead - 1)
        word = words[lead]
        if word == "of" and (
            lead == 0
            or (before is not None and before.kind in {"object", "mug"})
            or words[lead - 1] in _BE
        ):
            continue
        if word in {"and", "&"} and (before is None or before.kind not in {"object", "mug"}):
            continue
        if word == "'s" and (lead == 0 or not _is_target(words, lead - 1)):
            continue
        found.append(item.value)
    return found


def _object_follows(words: list[str], kinds: dict[int, Tag], index: int) -> bool:
    """Whether a known object ends the noun phrase the word at ``index`` starts."""
    for ahead in range(index + 1, min(index + 4, len(words))):
        tagged = kinds.get(ahead)
        if tagged is not None and tagged.kind == "object":
            return True
        if words[ahead] == "'s":
            continue  # "the employee's monitor"
        if (tagged is not None and tagged.kind != "unknown") or not words[ahead].isalpha():
            return False
    return False


_VAGUE_AMOUNTS = frozenset(
    {"many", "much", "lots", "several", "extra", "plenty", "multiple", "excess", "additional"}
)
_LABEL_MARKS = frozenset({":", "-", "=", ">"})
_MOVE_VERBS = frozenset({"move", "moving", "shift", "push", "slide", "drag", "relocate", "turn"})


def _is_label(words: list[str], item: Tag, first_mug: int | None) -> bool:
    """ "Keyboard: keep mugs 5 cm away": an object that heads the sentence as a label, before a
    mug, names what the rule is about, not what it moves."""
    after = item.index + item.size
    lead = words[: item.index]
    return (
        first_mug is not None
        and after < len(words)
        and words[after] in _LABEL_MARKS
        and all(word in _DETERMINERS or not word.isalpha() for word in lead)
    )


def _joined_to_a_mug(words: list[str], item: Tag, first_mug: int | None) -> bool:
    """ "The laptop and any mug ... apart": the object and a mug joined by "and" are a pair."""
    if first_mug is None:
        return False
    between = words[item.index + item.size : first_mug]
    return (
        bool(between)
        and between[0] in {"and", "&"}
        and all(word in _DETERMINERS or word in {"and", "&"} for word in between)
    )


_AUXILIARIES = frozenset(
    {"is", "are", "do", "does", "can", "should", "must", "will", "would", "could", "shall", "may"}
)


_ASKING = frozenset(
    {"check", "tell", "see", "know", "confirm", "verify", "ask", "wonder", "wondering", "find",
     "say", "show", "inform", "advise", "sure"}
)  # fmt: skip


def _asks(words: list[str]) -> bool:
    """A sentence that opens with an auxiliary and ends in "?" asks; "could you ...?" requests,
    but "can you check whether ...", "could you tell me if ...", "I wonder if ..." ask, however
    they end."""
    alpha = [word for word in words if word.isalpha()]
    for index, word in enumerate(alpha):
        if word in {"whether", "if"} and _ASKING & set(alpha[max(index - 3, 0) : index]):
            return True
    if alpha[:1] and alpha[0] in _ASKING_OPENERS and alpha[1:2] and _asked_about(alpha[1]):
        return True  # "is the left half ok for mugs", "are mugs allowed": asked, however it ends
    if words[-1:] == ["?"]:
        # "Mug 10 cm from phone, is it fine or not?": the clause that ends in "?" asks
        clause_of = _clauses(words)
        last = [word for word, at in zip(words, clause_of, strict=True) if at == clause_of[-1]]
        opening = [word for word in last if word.isalpha()][:2]
        if len(set(clause_of)) > 1 and opening[:1] and opening[0] in _AUXILIARIES:
            return opening[1:] != ["you"]  # "..., would you?" requests
    return (
        bool(words)
        and words[-1] == "?"
        and bool(alpha)
        and alpha[0] in _AUXILIARIES
        and alpha[1:2] != ["you"]
    )


_ASKING_OPENERS = frozenset({"is", "are", "does", "do", "did", "was", "were", "am"})


def _asked_about(word: str) -> bool:
    """What follows a question's opening verb: "is the ...", "do we ...", "are mugs ..."; not
    "do not ..." (an order) or "is forbidden to ..." (a non-native "it is")."""
    return word in _DETERMINERS | _DEFINITE | _PRONOUNS - {"you"} or word in MUG_WORDS


_CORE = frozenset(
    {"number", "unit", "bound", "zone", "bad_zone", "attribute", "colour", "away", "edge",
     "others", "gap", "count_of"}
)  # fmt: skip
_CLAUSE_BREAKS = frozenset(
    {",", ";", "-", "(", "!", ".", "but", "because", "since", "though", "although", "otherwise"}
)
_PRONOUNS = frozenset(
    {"you", "we", "i", "they", "it", "this", "that", "there", "he", "she", "someone", "somebody",
     "people", "everyone", "everybody", "nobody", "colleagues", "others"}
)  # fmt: skip
_TRAILING_KINDS = frozenset({"severity", "object", "unknown", "mug"})


def _clauses(words: list[str]) -> list[int]:
    """The clause of each word: a new one at a comma, dash or "but", and at "so"/"as" + pronoun."""
    clause, ids = 0, []
    for index, word in enumerate(words):
        after = words[index + 1] if index + 1 < len(words) else ""
        if index and (word in _CLAUSE_BREAKS or (word in {"so", "as"} and after in _PRONOUNS)):
            clause += 1
        ids.append(clause)
    return ids


def _core_clauses(words: list[str], tags: list[Tag], clause_of: list[int]) -> set[int]:
    """The clauses that hold the rule: a quantity, bound, zone or attribute; not a clause with its
    own subject whose only such words are "off"/"away" or a bare number ("..., someone knocked
    theirs off", "..., we had three spills this week")."""
    core: dict[int, set[str]] = {}
    for item in tags:
        if item.kind in _CORE:
            core.setdefault(clause_of[item.index], set()).add(item.kind)
    mugs = {clause_of[item.index] for item in tags if item.kind == "mug"}
    own_subject = {clause_of[index] for index, word in enumerate(words) if word in _PRONOUNS}
    return {
        clause
        for clause, kinds in core.items()
        if not (kinds <= {"away", "number"} and clause in own_subject and clause not in mugs)
    }


def _scoped(words: list[str], tags: list[Tag]) -> list[Tag]:
    """The tags that bear on the rule: a clause with no quantity, bound, zone or attribute is a
    comment ("... so you don't have to reach", "..., we're not doing floor espresso", "but not
    THAT much"): its negation flips nothing and its tense tells nothing; after the rule it keeps
    only a severity ("..., this is important") and what it names. A negation alone in the first
    clause ("Never, ever put mugs ...") still scopes over the rule."""
    clause_of = _clauses(words)
    core = _core_clauses(words, tags, clause_of)
    if not core or len(set(clause_of)) == 1:
        return tags
    first_core = min(core)
    named = {clause_of[item.index] for item in tags if item.kind in {"mug", "object"}}
    # a comment with its own subject ("so you don't need to stretch") names nothing of the rule
    own_subject = {clause_of[index] for index, word in enumerate(words) if word in _PRONOUNS}
    kept = []
    for item in tags:
        clause = clause_of[item.index]
        if clause in core:
            kept.append(item)
        elif item.kind == "negation":
            if clause == 0 and clause not in named:
                kept.append(item)
        elif (
            clause < first_core
            or item.kind == "severity"
            or (item.kind in _TRAILING_KINDS and clause not in own_subject)
        ):
            kept.append(item)
    return kept


_DEFINITE = frozenset({"the", "my", "your", "our", "his", "her", "their", "this", "that", "these",
                       "those"})  # fmt: skip
_STATE_VERBS = frozenset({"is", "are", "has", "have", "sits", "stands", "rests", "lies"})
# Words that place a sentence in the picture at hand: "in this photo the mug is ...".
_SCENE_WORDS = (
    ("in", "this", "photo"), ("in", "the", "photo"), ("in", "this", "picture"),
    ("in", "the", "picture"), ("in", "this", "image"), ("in", "the", "image"), ("right", "now"),
    ("at", "the", "moment"), ("currently",), ("at", "present"), ("as", "of", "now"),
)  # fmt: skip
# Past tense after a person: "we measured the mug at 18 cm", "I found the cup ...".
_PEOPLE = frozenset({"we", "i", "they", "he", "she", "someone", "somebody", "nobody", "everyone"})
_IRREGULAR_PAST = frozenset({"found", "saw", "had", "got", "took", "made", "left", "kept", "put",
                             "set", "said", "told", "noticed", "spotted", "moved"})  # fmt: skip
# Words that make "the mug is ..." a policy rather than a report: "is to be", "is not allowed".
_POLICY_WORDS = frozenset(
    {"allowed", "permitted", "banned", "forbidden", "prohibited", "required", "supposed",
     "expected", "meant", "kept", "never", "always", "only", "ideally", "preferably"}
)  # fmt: skip


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(tuple(words[index : index + size]) == phrase for index in range(len(words)))


def _reports(words: list[str], tags: list[Tag]) -> bool:
    """ "We measured the mug at 18 cm": a person and a past-tense verb report what was done (in
    the rule's clause: "..., we've had enough spills" is a comment)."""
    clause_of = _clauses(words)
    core = _core_clauses(words, tags, clause_of)
    return any(
        clause_of[index] in core
        and word in _PEOPLE
        and (after in _IRREGULAR_PAST or (after.endswith("ed") and not after.endswith("eed")))
        for index, (word, after) in enumerate(pairwise(words))
    )


def _read_subject(words: list[str], tags: list[Tag], slots: Slots) -> None:
    """What the verb after a sentence-initial mug says.

    "The mug is 12 cm from the laptop", "my cup has a lid": a definite or possessive mug with a
    present "is"/"has" and no modal, severity or policy word describes the scene. "The mug dreams
    of ...": a verb the tagger does not know, with no modal or imperative, is no placement rule.
    Bare plurals ("Mugs are kept 10 cm from laptops") and verbless rules are policy, as before.
    """
    if slots.deontic or slots.question or any(item.kind == "modal" for item in tags):
        return
    scene = next((" ".join(p) for p in _SCENE_WORDS if _contains(words, p)), None)
    if scene is not None and not set(words) & _POLICY_WORDS:
        slots.describes = scene  # "In this photo the mug is in the right half"
        return
    first = next((item for item in tags if item.kind not in {"severity", "colour"}), None)
    if first is None or first.kind != "mug":
        return
    lead = [word for word in words[: first.index] if word.isalpha()]
    if any(item.kind == "severity" for item in tags) or any(
        word not in _DETERMINERS and word not in _DEFINITE and word not in _COLOURS for word in lead
    ):
        return
    after = first.index + first.size
    verb = words[after] if after < len(words) else ""
    # the verb of a mug described on the way ("a white mug with a lid is next to ...")
    state = next(
        (at for at in range(after, min(after + 5, len(words))) if words[at] in _STATE_VERBS), None
    )
    singular = words[first.index] in {"mug", "cup", "coffee mug", "coffee cup"}
    named = (set(lead) & (_DEFINITE | {"a", "an"})) or (not lead and singular)
    # "is to be", "is not allowed": a policy, not a report
    policy = bool(set(words[after:]) & _POLICY_WORDS)
    if named and state is not None and not policy and words[state + 1 : state + 2] != ["to"]:
        slots.describes = " ".join(words[max(first.index - 1, 0) : state + 1])
        return
    unknown = next((item for item in tags if item.kind == "unknown" and item.index == after), None)
    label = after + 1 < len(words) and words[after + 1] in _LABEL_MARKS
    # a short word one slip from a rule word may be that word ("nedd"); a longer one the mender
    # would have mended if it could
    slip = len(verb) < 5 and any(_edits_within_one(verb, known) for known in _mendable_words())
    if unknown is not None and not (verb.endswith("ly") or verb in _AUX_WORDS or label or slip):
        slots.verb = verb


_AUX_WORDS = frozenset({"may", "might", "can", "could", "will", "would", "shall", "do", "does"})


def _pair_of_mugs(words: list[str], item: Tag) -> bool:
    """ "no two mugs", "any two mugs", "between two mugs": the 2 names a pair, not a count."""
    return (
        item.value == "2"
        and 0 < item.index < len(words) - 1
        and words[item.index - 1] in {"no", "any", "between", "every"}
        and " ".join(words[item.index + 1 : item.index + 3]) not in {"or more", "or fewer"}
        and tuple(words[item.index + 1 : item.index + 2]) in _mug_phrases()
    )


@cache
def _mug_phrases() -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(mug.split()) for mug in MUG_WORDS)


def slots_of(words: list[str]) -> Slots:
    """Gather the tags of a normalised sentence into slots."""
    tags = _scoped(words, tag(words))
    slots = Slots()
    _read_quantities(words, tags, slots)
    pairs = {item.index for item in tags if item.kind == "number" and _pair_of_mugs(words, item)}
    slots.numbers = [number for number in slots.numbers if number.index not in pairs]
    slots.others |= bool(pairs)
    slots.question = _asks(words)
    slots.past |= _reports(words, tags)
    slots.must_never = any(
        words[index : index + 2] == ["must", "never"] for index in range(len(words))
    )
    slots.unknown_objects = _unknown_objects(words, tags)
    slots.ands = [index for index, word in enumerate(words) if word in {"and", "&"}]
    slots.clause_of = _clauses(words)
    _read_subject(words, tags, slots)
    first_mug = next((item.index for item in tags if item.kind == "mug"), None)
    for position, item in enumerate(tags):
        before = tags[position - 1] if position else None
        after = tags[position + 1] if position + 1 < len(tags) else None
        _gather(slots, words, item, before, after, first_mug)
        if item.kind == "prep" and item.value == "and":
            slots.range_of_numbers |= bool(
                before and after and before.kind == "number" and after.kind == "number"
            )
    slots.range_of_numbers |= any(
        words[index] in {"-", "to"}
        and 0 < index < len(words) - 1
        and NUMBER.fullmatch(words[index - 1]) is not None
        and NUMBER.fullmatch(words[index + 1]) is not None
        for index in range(len(words))
    )
    return slots


def _gather(
    slots: Slots,
    words: list[str],
    item: Tag,
    before: Tag | None,
    after: Tag | None,
    first_mug: int | None,
) -> None:
    """One tag into its slot."""
    kind = item.kind
    if kind == "severity":
        slots.severities.append(item.value)
    elif kind == "mug":
        slots.mugs.append(item.index)
        slots.mug_as_target |= _is_target(words, item.index) or (
            before is not None and before.kind == "away"
        )
        slots.no_mug |= (
            before is not None and before.kind == "negation" and words[before.index] == "no"
        )
    elif kind == "object":
        if (
            (first_mug is None or item.index < first_mug)
            and not _is_target(words, item.index)
            and not _is_label(words, item, first_mug)
            and not _joined_to_a_mug(words, item, first_mug)
        ):
            slots.subject_objects.append(item.value)
        if item.value not in slots.objects:
            slots.objects.append(item.value)
    elif kind == "unknown":
        slots.moves |= item.value in _MOVE_VERBS
        slots.vague |= item.value in _VAGUE_AMOUNTS
    elif kind == "bound":
        slots.bounds.append((item.value, item.index))
    elif kind == "negation":
        slots.negations += 1
        slots.negated_clauses.append(slots.clause_of[item.index])
    elif kind == "away":
        slots.away += 1
        slots.gap = True
    elif kind == "gap":
        slots.gap = True
        slots.gap_words.append(item.value)
    elif kind == "others" and words[item.index] == "apart" and item.size == 1:
        slots.apart = True
    elif kind == "question" and words[item.index] == "when" and words[-1:] != ["?"]:
        pass  # "When there are several mugs, keep them ...": a condition, not a question
    elif kind in {"edge", "others", "count_of", "question", "past", "surface"}:
        setattr(slots, kind, True)
    elif kind == "prep" and item.value == "between":
        slots.between_mugs |= after is not None and after.kind == "mug"
    elif kind == "zone":
        slots.zones.append(item.value)
    elif kind == "bad_zone":
        slots.bad_zones.append(item.value)
    elif kind == "attribute":
        slots.alternatives |= item.index > 0 and words[item.index - 1] in {"or", "either"}
        slots.attributes.append(item.value)
        slots.requirements.append(item.index)
        slots.things.append(_thing(words, item.index))
    elif kind == "attribute_cue":
        slots.attribute_cues.append(item.value)
    elif kind == "colour":
        slots.colours.append(words[item.index])
        slots.no_colour |= (  # "No chipped mugs"
            before is not None
            and before.kind == "negation"
            and words[before.index] == "no"
            and after is not None
            and after.kind == "mug"
        )
        slots.requirements.append(item.index)
        slots.predicate_colour |= item.index > 0 and words[item.index - 1] in _BE | {"stay"}
        if slots.colours and slots.predicate_colour and slots.distances:
            slots.attributes.append(words[item.index])  # "be white and 10 cm from ...": two rules
    elif kind == "modal":
        slots.deontic = True


# ---------------------------------------------------------------------------------------------
# Typed patterns: one per rule type, each from the slots alone.


def _direction(slots: Slots, slot: str) -> Bound | None:
    """The bound the sentence sets, after its negations; ``None`` when it names none.

    A plain bound ("within", "more than") flips under a free "not"/"never"; a bound that already
    carries its negation ("no closer than") or is explicit ("at least") does not, and a negated
    explicit bound ("not at least") is refused as unclear.
    """
    directions: set[Bound] = set()
    negated = slots.negations % 2 == 1
    for bound, at in slots.bounds:
        fixed = bound.endswith("!")
        name = bound.rstrip("!")
        # "mugs not at the edge, 5cm min": the "not" is in another clause than the "min"
        here = slots.negated_clauses.count(slots.clause_of[at]) % 2 == 1
        if fixed and negated and here and name in {"min", "max"}:
            raise SlotRefusal(
                "bound", f"'not' before '{_BOUND_WORDS[name]}' is unclear", HINTS[slot]
            )
        flipped = _FLIP[name] if negated and not fixed else name
        directions.add(flipped)  # type: ignore[arg-type]
    if {"min", "above"} & directions and {"max", "below"} & directions:
        raise SlotRefusal("bound", "it sets both a lower and an upper bound", HINTS[slot])
    if not directions:
        return None
    if "exact" in directions and len(directions) > 1:
        directions.discard("exact")
    return sorted(directions)[0]


_FLIP: dict[str, Bound] = {
    "min": "below", "above": "max", "max": "above", "below": "min", "exact": "exact",
}  # fmt: skip
_BOUND_WORDS = {"min": "at least", "max": "at most"}


def _one(values: list[Quantity], slot: str, what: str) -> Quantity:
    distinct = {value.key(): value for value in values}
    if len(distinct) > 1:
        named = " and ".join(str(value) for value in distinct.values())
        raise SlotRefusal(slot, f"it names two different {what}s ({named})", HINTS[slot])
    return values[0]


def _distance_rule(slots: Slots) -> dict[str, Any]:
    """min_distance / max_distance / edge_margin / spacing, by the target the slots name."""
    distance = _one(slots.distances, "distance", "distance")
    if slots.range_of_numbers:
        raise SlotRefusal("distance", "a range of distances is two rules", HINTS["distance"])
    targets = _targets(slots)
    if len(targets) > 1:
        raise SlotRefusal(
            "object", f"the distance is from {' or from '.join(targets)}", HINTS["object"]
        )
    if not targets:
        raise SlotRefusal(
            "object", f"the distance {distance} is from nothing named", HINTS["object"]
        )
    target = targets[0]
    direction = _direction(slots, "distance")
    if direction == "exact":
        raise SlotRefusal("bound", "a distance rule sets at least or at most", HINTS["distance"])
    if direction is None and slots.negations % 2 == 1:
        raise SlotRefusal("bound", "'not' with no 'within' or 'closer than'", HINTS["distance"])
    bound = "max" if direction in {"max", "below"} else "min"
    if bound == "max" and "gap" in slots.gap_words:
        raise SlotRefusal("bound", "a gap is kept at least, not at most", HINTS["max_distance"])
    value = {"value": distance.value, "unit": distance.unit}
    if bound == "min" and distance.value == 0 and target != "the edge":
        raise SlotRefusal(
            "distance", "a distance of 0 keeps nothing apart", HINTS["distance"], final=True
        )
    if target == "the edge":
        if bound == "max":
            raise SlotRefusal(
                "edge", "only a minimum distance from the edge can be a rule", HINTS["edge"]
            )
        return {"type": "edge_margin", "distance": value}
    if target == "other mugs":
        if bound == "max":
            raise SlotRefusal(
                "spacing", "only a minimum distance from other mugs can be a rule", HINTS["spacing"]
            )
        return {"type": "spacing", "distance": value}
    return {"type": f"{bound}_distance", "object": target, "distance": value}


def _targets(slots: Slots) -> list[str]:
    """What the distance is measured from: an object, the edge, or the other mugs."""
    if len(slots.objects) > 1:
        raise SlotRefusal(
            "object",
            f"it names two objects ({', '.join(slots.objects)}); one rule each",
            HINTS["object"],
        )
    targets = list(slots.objects)
    if slots.edge and not slots.objects:
        targets.append("the edge")
    spread = slots.between_mugs or "spread" in slots.gap_words or slots.apart
    if slots.others or (spread and not slots.objects and not slots.edge):
        targets.append("other mugs")
    return targets


def _count_rule(slots: Slots) -> dict[str, Any]:
    """How many mugs: a bound with a whole number, "between N and M", or "no mugs"."""
    if not slots.numbers and slots.no_mug:
        return {"type": "count", "max": 0}
    if not slots.numbers:
        raise SlotRefusal("count", "the number of mugs is missing", HINTS["count"])
    numbers = []
    for number in slots.numbers:
        if not number.value.is_integer():
            raise SlotRefusal(
                "count", f"a number of mugs is a whole number, got {number}", HINTS["count"]
            )
        numbers.append(int(number.value))
    if len(numbers) == 2 and slots.range_of_numbers:
        return {"type": "count", "min": numbers[0], "max": numbers[1]}
    if len(numbers) == 2 and len(slots.bounds) == 2:
        return _two_bounds(slots, numbers)
    if len(set(numbers)) > 1:
        raise SlotRefusal(
            "count", f"it names two numbers of mugs ({numbers[0]} and {numbers[1]})", HINTS["count"]
        )
    direction = _direction(slots, "count")
    if direction is None and numbers[0] == 0:
        return {"type": "count", "max": 0}  # "Zero mugs allowed on the desk"
    if direction is None:
        raise SlotRefusal(
            "count", f"{numbers[0]} mugs needs 'at most', 'at least' or 'exactly'", HINTS["count"]
        )
    return {"type": "count", **_COUNT_BOUNDS[direction](numbers[0])}


def _two_bounds(slots: Slots, numbers: list[int]) -> dict[str, Any]:
    """ "at least 1 and at most 3 mugs", "mugs: min 1, max 5": each bound takes the next number."""
    rule: dict[str, Any] = {"type": "count"}
    bounds = sorted(slots.bounds, key=lambda bound: bound[1])
    for (bound, at), number, quantity in zip(bounds, numbers, slots.numbers, strict=True):
        name = bound.rstrip("!")
        if name not in {"min", "max"} or at > quantity.index:
            raise SlotRefusal("count", "it names two numbers of mugs", HINTS["count"])
        rule.update(_COUNT_BOUNDS[name](number))
    if "min" not in rule or "max" not in rule:
        raise SlotRefusal("count", "it names two numbers of mugs", HINTS["count"])
    return rule


_COUNT_BOUNDS = {
    "min": lambda n: {"min": n},
    "above": lambda n: {"min": n + 1},
    "max": lambda n: {"max": n},
    "below": lambda n: {"max": n - 1},
    "exact": lambda n: {"min": n, "max": n},
}


def _zone_rule(slots: Slots) -> dict[str, Any]:
    """A named zone: outside for "out of"/"away from", and a "not"/"never" turns it round."""
    zones = list(dict.fromkeys(slots.zones))
    if len(zones) > 1:
        raise SlotRefusal("zone", f"it names two zones ({' and '.join(zones)})", HINTS["zone"])
    outside = (slots.negations % 2 == 1) != (slots.away > 0)
    return {"type": "zone", "zone": zones[0], "mode": "outside" if outside else "inside"}


def _thing(words: list[str], index: int) -> str:
    """The attribute noun as written, with the describing words before it ("insulated sleeve")."""
    start = index
    while (
        start > 0
        and words[start - 1].isalpha()
        and (words[start - 1] in {*_COLOURS, "clear"} or words[start - 1] not in _known_words())
    ):
        start -= 1
    return " ".join(words[start : index + 1])


def _attribute_rule(slots: Slots) -> dict[str, Any]:
    """A CLIP prompt for what the mug stands on or has ("a mug on a coaster", "a white mug").

    A plural noun is kept as written and takes no article, as the grammar's prompts do.
    """
    if not slots.attributes:
        colour = " ".join(slots.colours)
        coloured = f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} mug"
        if slots.negations % 2 == 1:
            # "Mugs must not be white", "No chipped mugs": the colour is what fails
            return {"type": "attribute", "prompt": DEFAULT_NEGATIVE, "negative": coloured}
        return {"type": "attribute", "prompt": coloured}
    noun, thing = slots.attributes[0], slots.things[0]
    relation = "on" if noun in _ON_NOUNS else "with"
    if (slots.negations + ("without" in slots.attribute_cues)) % 2 == 1:
        relation = "without" if relation == "with" else "not on"
    plural = thing.endswith("s") and not thing.endswith("ss")
    article = "" if plural else "an " if thing[0] in "aeiou" else "a "
    colour = " ".join(word for word in slots.colours if word not in thing.split())
    mug = f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} mug" if colour else "a mug"
    return {"type": "attribute", "prompt": f"{mug} {relation} {article}{thing}"}


def _describe(rule: dict[str, Any]) -> str:
    """A reading in the words of the README's table: "min_distance laptop 10 cm"."""
    parts = [rule["type"]]
    for key in ("object", "zone", "mode", "prompt"):
        if key in rule:
            parts.append(str(rule[key]))
    if "distance" in rule:
        parts.append(f"{rule['distance']['value']:g} {rule['distance']['unit']}")
    for key in ("min", "max"):
        if key in rule:
            parts.append(f"{key} {rule[key]}")
    return " ".join(parts)


def _readings(slots: Slots) -> list[dict[str, Any]]:
    """Every rule type the slots support, each built by its pattern."""
    readings = []
    countable = (bool(slots.numbers) and bool(slots.mugs)) or slots.count_of
    if slots.distances:
        readings.append(_distance_rule(slots))
    elif (
        slots.numbers
        and (slots.objects or slots.edge or slots.others or slots.gap)
        and not (slots.count_of or _number_before_mug(slots))
    ):
        units = ", ".join(sorted(_UNIT_VALUES))
        raise SlotRefusal(
            "distance", f"the distance {slots.numbers[0]} needs a unit ({units})", HINTS["distance"]
        )
    if _banned(slots) and not slots.no_mug:
        readings.append({"type": "count", "max": 0})
    elif (countable and not slots.distances) or (
        slots.no_mug and not slots.zones and not slots.distances and not slots.attributes
    ):
        if slots.objects and not slots.no_mug:
            raise SlotRefusal("count", "only mugs are counted", HINTS["count"])
        readings.append(_count_rule(slots))
    if slots.zones:
        readings.append(_zone_rule(slots))
    described = slots.colours and (slots.deontic or slots.bounds or slots.no_colour)
    described = described and not readings
    if slots.attributes or described:
        readings.append(_attribute_rule(slots))
    return readings


def _number_before_mug(slots: Slots) -> bool:
    return any(mug - number.index in {1, 2} for number in slots.numbers for mug in slots.mugs)


def _check(slots: Slots) -> None:
    """Refusals that hold whatever the rule: what the sentence names must be known and positive."""
    if slots.question:
        raise SlotRefusal("rule", "it is a question, not a rule", HINTS["rule"], final=True)
    if slots.past:
        raise SlotRefusal("rule", "it tells what was, not where mugs should be", HINTS["rule"])
    if slots.describes:
        raise SlotRefusal(
            "rule",
            f"it describes the scene ({slots.describes!r}), not where mugs should be",
            "The mug should be on a coaster",
            final=True,
        )
    if slots.verb:
        raise SlotRefusal(
            "rule", f"{slots.verb!r} is no placement or requirement verb", HINTS["rule"], final=True
        )
    if _two_requirements(slots):
        named = " and ".join(dict.fromkeys(slots.colours[:1] + slots.attributes))
        raise SlotRefusal(
            "rule", f"it sets two requirements ({named}); one rule each", HINTS["rule"], final=True
        )
    if slots.arithmetic:
        raise SlotRefusal(
            "distance",
            f"{slots.arithmetic!r} is a calculation; write the number it makes",
            HINTS["distance"],
            final=True,
        )
    if slots.negative:
        raise SlotRefusal("distance", "a distance cannot be negative", HINTS["distance"])
    if slots.unknown_units:
        units = ", ".join(sorted(_UNIT_VALUES))
        raise SlotRefusal(
            "unit", f"unknown unit {slots.unknown_units[0]!r} (use {units})", HINTS["distance"]
        )
    if slots.bad_zones:
        zones = "left/right/top/bottom half, left/center/right third, center"
        raise SlotRefusal(
            "zone", f"unknown zone {slots.bad_zones[0]!r} (zones: {zones})", HINTS["zone"]
        )
    if slots.unknown_objects:
        try:
            canonical_object(slots.unknown_objects[0])
        except UnknownObject as error:
            raise SlotRefusal("object", str(error), HINTS["object"]) from None
    if slots.subject_objects and not _symmetric(slots):
        raise SlotRefusal(
            "subject",
            f"only mugs are judged, and this is about the {slots.subject_objects[0]}",
            HINTS["subject"],
        )
    if len(set(slots.severities)) > 1:
        raise SlotRefusal(
            "severity",
            f"it names two severities ({' and '.join(sorted(set(slots.severities)))})",
            HINTS["severity"],
        )


def _two_requirements(slots: Slots) -> bool:
    """ "must have a lid and sit on a coaster", "must be white and at least 10 cm from ...": two
    rules joined by "and"; "on a mat or coaster" is one rule with a choice."""
    joined = bool(slots.requirements) and any(
        min(slots.requirements) < at < max(slots.requirements) for at in slots.ands
    )
    if slots.predicate_colour and slots.attributes:
        return joined or bool(slots.distances)
    return len(set(slots.attributes)) > 1 and not slots.alternatives and joined


def _symmetric(slots: Slots) -> bool:
    """ "Keep the phone 10 cm clear of mugs": a distance between an object and the mugs is the
    same distance whichever of the two it names first, so it is the object's distance rule. A
    sentence that moves the object ("move the laptop 10 cm to the left") or names no mug as the
    far end stays about the object, and is refused; so does one with no "keep"/"must"/"should"
    or bound ("the laptop is 30 cm from the mug" describes a scene)."""
    asks = slots.deontic or bool(slots.bounds)
    return bool(slots.distances) and slots.mug_as_target and asks and not slots.moves


def _banned(slots: Slots) -> bool:
    """ "Mugs are not allowed on the desk": mugs kept off the whole surface, a count of at most 0."""
    named = (
        slots.zones, slots.distances, slots.numbers, slots.attributes, slots.objects,
        slots.colours, slots.bad_zones,
    )  # fmt: skip
    return (
        slots.negations % 2 == 1
        and slots.surface
        and bool(slots.mugs)
        and not any(named)
        and not (slots.bounds or slots.vague or slots.edge or slots.gap or slots.others)
        and not (slots.apart or slots.count_of)
    )


def read_rule(text: str) -> dict[str, Any]:
    """One sentence -> the structured rule (as ``rule_from_dict`` takes it), or a SlotRefusal."""
    words = normalise(text)
    slots = slots_of(words)
    _check(slots)
    readings = _readings(slots)
    if len(readings) > 1:
        both = " and as ".join(repr(_describe(reading)) for reading in readings)
        raise SlotRefusal("rule", f"it reads both as {both}", "one rule per sentence")
    if not readings:
        slot = _missing_slot(slots)
        raise SlotRefusal(slot, _MISSING[slot], HINTS[slot])
    rule = readings[0]
    severity = slots.severities[0] if slots.severities else "critical" if slots.must_never else None
    return {**rule, "severity": severity} if severity else rule


def _missing_slot(slots: Slots) -> str:
    if slots.objects or slots.gap or slots.edge or slots.others:
        return "distance"
    if slots.mugs and (slots.count_of or slots.bounds):
        return "count"
    return "rule"


_MISSING = {
    "count": "the number of mugs is missing",
    "distance": "no number with a unit (e.g. '10 cm')",
    "rule": "no rule found: it names no distance, zone, count of mugs or mug attribute",
}
