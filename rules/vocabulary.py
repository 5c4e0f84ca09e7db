"""Object names a rule may use: the detector's COCO class names plus the words people say instead."""

from __future__ import annotations

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Words people use -> the detector's class name (SPEC 4.1 lists the first four groups).
SYNONYMS = {
    "computer": "laptop",
    "notebook": "laptop",
    "macbook": "laptop",
    "phone": "cell phone",
    "mobile": "cell phone",
    "mobile phone": "cell phone",
    "smartphone": "cell phone",
    "cellphone": "cell phone",
    "iphone": "cell phone",
    "monitor": "tv",
    "screen": "tv",
    "display": "tv",
    "television": "tv",
    "mug": "cup",
    "coffee mug": "cup",
    "coffee cup": "cup",
    "glass": "wine glass",
    "plant": "potted plant",
    "sofa": "couch",
    "fridge": "refrigerator",
    "table": "dining table",
    "desk": "dining table",
    "computer mouse": "mouse",
    "mouses": "mouse",
    "pc": "laptop",
    "desktop computer": "laptop",
    "notebook computer": "laptop",
    "handset": "cell phone",
    "telephone": "cell phone",
    "computer monitor": "tv",
    "computer screen": "tv",
    "lcd": "tv",
    "tv screen": "tv",
    "textbook": "book",
    "water bottle": "bottle",
}
# Desk things that are not detector classes: refused by name, and never "mended" into a class
# that is one letter away ("tablet" is not a misspelt "table", "lamp" stays a lamp).
NOT_OBJECTS = frozenset(
    {"tablet", "tablets", "lamp", "lamps", "house", "pen", "pens", "pencil", "pencils", "printer",
     "speaker", "speakers", "headphones", "charger", "cable", "cables", "stapler", "plate",
     "plates", "paper", "papers", "folder", "tissue", "tissues", "block", "cook", "horses",
     "board", "boards", "mousepad", "ipad", "notepad", "notepads", "webcam", "router"}
)  # fmt: skip
# The subject of a rule is the mug; these all name it.
MUG_WORDS = ("mug", "mugs", "cup", "cups", "coffee mug", "coffee mugs", "coffee cup", "coffee cups")
_ARTICLES = ("the ", "a ", "an ", "any ", "all ", "every ", "each ", "my ", "your ")


class UnknownObject(ValueError):
    """A name that is neither a detector class nor a known synonym."""


def _clean(name: str) -> str:
    text = " ".join(name.lower().replace("-", " ").split())
    for article in _ARTICLES:
        if text.startswith(article):
            text = text[len(article) :]
    return text


def _singular(word: str) -> list[str]:
    forms = [word]
    if word.endswith("mice"):
        forms.append(word[:-4] + "mouse")
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    if word.endswith("es"):
        forms.append(word[:-2])
    if word.endswith("s"):
        forms.append(word[:-1])
    return forms


def canonical_object(name: str) -> str:
    """The detector class a name refers to: ``"Laptops"`` -> ``laptop``, ``"phone"`` -> ``cell phone``."""
    for form in _singular(_clean(name)):
        if form in COCO_CLASSES:
            return form
        if form in SYNONYMS:
            return SYNONYMS[form]
    raise UnknownObject(
        f"unknown object {name.strip()[:40]!r}; use a detector class such as laptop, keyboard, "
        "cell phone, book, tv, mouse, bottle, bowl (or computer, phone, monitor, screen)"
    )


def canonical_subject(name: str) -> str:
    """Rules judge mugs; every word for a mug means the same subject."""
    if _clean(name) in MUG_WORDS:
        return "mug"
    raise ValueError(f"subject: only mugs can be judged, got {name.strip()[:40]!r}")
