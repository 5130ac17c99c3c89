"""Label vocabularies, the thesis's prompt presets and the answer parser (pure Python: no torch).

A vocabulary is a versioned YAML file in ``satcore_vlm/data/vocabularies/`` (or any file of the same shape):
``name``, ``version``, ``labels`` and ``synonyms`` (answer phrase → label). The parser turns a model's free
answer into labels of the vocabulary, best first, and reports every word it could not place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from satcore.errors import SpecError

BUNDLED_VOCABULARIES = ("mai", "rsicd", "rsscn7", "merged")

#: Words an answer may hold around its labels that are not labels and not worth reporting.
STOPWORDS = frozenset(
    """a an the and or of in on at to with this that these those is are was be there it its i see can image
    images satellite picture photo shows show showing contains containing answer label labels category
    categories object objects identified detected visible some several many one two three also area areas
    here which appears appear seem seems like""".split()  # noqa: SIM905 - a word list reads better as text
)

_SEPARATORS = re.compile(r"[,;\n\"“”'‘’`()\[\]{}|:•·]|\.(?:\s|$)|\s+-\s+|\band\b|\bor\b|\s+&\s+")


def _singular(word: str) -> str:
    """A crude singular: enough to make 'tanks'/'tank', 'courses'/'course', 'factories'/'factory' meet."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    """Lower-case words, with ``river / lake`` kept as one word ``river/lake``."""
    t = text.lower().replace("_", " ").replace("-", " ")
    t = re.sub(r"\s*/\s*", "/", t)
    return re.findall(r"[a-z0-9/]+", t)


def _tokens(text: str) -> list[str]:
    """:func:`_words`, each made singular: what labels and answers are compared by."""
    return [_singular(w) for w in _words(text)]


@dataclass(frozen=True)
class Vocabulary:
    """Labels, the answer phrases that mean them, and the file's name and version."""

    name: str
    version: int
    labels: tuple[str, ...]
    synonyms: dict[str, str] = field(default_factory=dict)
    multi_label: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def phrases(self, extra: dict[str, str] | None = None) -> dict[tuple[str, ...], str]:
        """Token sequence → label, for every label and synonym (``extra`` last, so it wins)."""
        out: dict[tuple[str, ...], str] = {}
        for lab in self.labels:
            out[tuple(_tokens(lab))] = lab
        for src in (self.synonyms, extra or {}):
            for phrase, lab in src.items():
                out[tuple(_tokens(phrase))] = lab
        return out


def _vocab_from_dict(data: dict[str, Any], where: str) -> Vocabulary:
    labels = data.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise SpecError(f"{where}: `labels` must be a list of at least two label names")
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise SpecError(f"{where}: labels {dupes} are listed more than once; keep one of each")
    syn = {str(k): str(v) for k, v in (data.get("synonyms") or {}).items()}
    bad = sorted({v for v in syn.values() if v not in labels})
    if bad:
        raise SpecError(f"{where}: synonyms map to {bad}, which are not among the labels; fix the targets")
    return Vocabulary(str(data.get("name") or where), int(data.get("version") or 1), tuple(labels), syn,
                      bool(data.get("multi_label", False)), data)


@cache
def _bundled(name: str) -> Vocabulary:
    import yaml

    text = (resources.files("satcore_vlm") / "data" / "vocabularies" / f"{name}.yaml").read_text("utf-8")
    return _vocab_from_dict(yaml.safe_load(text), f"bundled vocabulary {name!r}")


def load_vocabulary(value: str | list[str], base: Path | None = None) -> Vocabulary:
    """A bundled vocabulary by name, a YAML file of the same shape, or a plain list of labels.

    Raises:
        SpecError: unknown name, missing file or a malformed vocabulary.
    """
    if isinstance(value, list):
        return _vocab_from_dict({"name": "custom", "labels": list(value)}, "vocabulary")
    if value in BUNDLED_VOCABULARIES:
        return _bundled(value)
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    if not p.is_file():
        raise SpecError(f"vocabulary: {value!r} is neither a bundled vocabulary "
                        f"({', '.join(BUNDLED_VOCABULARIES)}) nor an existing YAML file ({p})")
    import yaml

    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SpecError(f"vocabulary file {p}: expected a mapping with `labels:` (and `synonyms:`)")
    return _vocab_from_dict(data, f"vocabulary file {p}")


@dataclass(frozen=True)
class Preset:
    """One of the thesis's recognition prompts with the vocabulary its answers are parsed into."""

    name: str
    prompt: str
    vocabulary: str
    multi_label: bool
    answers: dict[str, str]
    notes: str = ""


@cache
def presets() -> dict[str, Preset]:
    """The bundled prompt presets (``mai``, ``rsicd``, ``rsscn7``, ``merged``), prompts verbatim."""
    import yaml

    data = yaml.safe_load((resources.files("satcore_vlm") / "data" / "prompts.yaml").read_text("utf-8"))
    return {
        name: Preset(name, p["prompt"], p["vocabulary"], bool(p["multi_label"]),
                     {str(k): str(v) for k, v in (p.get("answers") or {}).items()}, str(p.get("notes") or ""))
        for name, p in data["presets"].items()
    }


@dataclass(frozen=True)
class ParsedAnswer:
    """Labels found in an answer (first mention first, each once) and the words that matched no label."""

    labels: list[str]
    unmatched: list[str]


def parse_answer(answer: str, vocab: Vocabulary, extra: dict[str, str] | None = None) -> ParsedAnswer:
    """Parse a free-text answer into labels of ``vocab``.

    The answer is cut at commas, semicolons, quotes, brackets, line breaks, sentence ends and the words
    "and"/"or"; in each piece the longest label or synonym phrase is matched first, ignoring case, hyphens,
    plurals and a spaced ``river / lake``. Words that are neither part of a match nor filler
    (:data:`STOPWORDS`) are returned in ``unmatched``, joined per run of adjacent words, so nothing the model
    said is dropped silently.
    """
    table = vocab.phrases(extra)
    longest = max((len(k) for k in table), default=1)
    labels: list[str] = []
    unmatched: list[str] = []
    for piece in _SEPARATORS.split(answer):
        words = _words(piece)
        toks = [_singular(w) for w in words]
        i, run = 0, list[str]()
        while i < len(toks):
            for n in range(min(longest, len(toks) - i), 0, -1):
                hit = table.get(tuple(toks[i:i + n]))
                if hit is not None:
                    if run:
                        unmatched.append(" ".join(run))
                        run = []
                    if hit not in labels:
                        labels.append(hit)
                    i += n
                    break
            else:
                if toks[i] not in STOPWORDS and not toks[i].isdigit():
                    run.append(words[i])  # as the model wrote it (lower case)
                elif run:
                    unmatched.append(" ".join(run))
                    run = []
                i += 1
        if run:
            unmatched.append(" ".join(run))
    return ParsedAnswer(labels, unmatched)


def unify_labels(labels: list[str] | tuple[str, ...], exclusions: str = "default") -> list[str]:
    """Map source-dataset labels to the merged set's labels (the thesis's unification), dropping exclusions.

    Args:
        labels: labels of MAI, RSICD or RSSCN7 items.
        exclusions: ``default`` (section 5.2), ``section-5.2`` or ``section-5.3``: which of the thesis's two
            statements of the excluded labels to apply.
    """
    merged = _bundled("merged").raw
    excl = merged["exclude"]
    key = excl["default"] if exclusions == "default" else exclusions
    if key not in excl or key == "default":
        raise SpecError(f"exclusions: {exclusions!r} is not one of default, section-5.2, section-5.3")
    drop = set(excl[key])
    out: list[str] = []
    for lab in labels:
        low = lab.lower()
        if low in drop:
            continue
        u = merged["unify"].get(low, low)
        if u not in out:
            out.append(u)
    return out
