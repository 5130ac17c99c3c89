"""``captions``: corpus BLEU-1..4, ROUGE-L, CIDEr-D, and model-based scores supplied per item.

The scorers follow coco-caption (``pycocoevalcap``'s ``Bleu``, ``Rouge``, ``Cider``), which the tests use as
the reference:

- BLEU-n (Papineni et al. 2002): corpus level, clipped n-gram matches summed over items, geometric mean of
  the 1..n precisions, brevity penalty against the closest reference length (ties: the shorter). A zero
  precision gives 0 (coco-caption adds 1e-15/1e-9 and reports a tiny positive number instead).
- ROUGE-L: per item the F-measure with β = 1.2 of the longest common subsequence, using the best precision
  and the best recall over the references (as coco-caption does); mean over items.
- CIDEr-D (Vedantam et al. 2015, coco-caption's ``Cider``): TF-IDF n-gram vectors (n = 1..4), document
  frequencies from the evaluated split's references, clipped hypothesis weights, a Gaussian length penalty
  with σ = 6, ×10, mean over items. The document frequencies need the whole split, so each item's n-gram
  counts are kept until :meth:`CaptionsBlock.result` (text only: a few hundred numbers per item).
- METEOR 1.5 (Denkowski & Lavie 2014) is coco-caption's own: ``pycocoevalcap``'s ``Meteor`` runs its Java
  jar (with WordNet and paraphrase tables) on every item of the split at :meth:`CaptionsBlock.result`, and
  the value reported is the jar's corpus aggregate (what ``Meteor.compute_score`` returns as the score, not
  the mean of its per-item scores). Without Java or pycocoevalcap it is ``null`` with a reason (or the mean
  of per-item values a plugin supplied). One JVM is started per process and reused.
- BERTScore and CLIPScore need models, which the core does not have: a plugin may put per-item values in
  the record (``bertscore_f1``, ``clipscore``); their mean is reported, otherwise ``null`` with a reason.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import re
import shutil
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from satcore.evaluate.blocks.base import ExactSum, Record, _Seen, missing, num, put, seq

MAX_N = 4
SIGMA = 6.0
MODEL_SCORES = ("meteor", "bertscore_f1", "clipscore")
MODEL_REASONS = {
    "meteor": ("needs WordNet synonyms and paraphrase tables (coco-caption's Java METEOR 1.5, or nltk's "
               "meteor_score with the wordnet data), which the core does not ship; a plugin can supply "
               "per-item values"),
    "bertscore_f1": ("needs a BERT-family model: set `bertscore_model:` (a local model folder) on a "
                     "satcore-vlm `vlm-caption` step, or have a plugin supply per-item values"),
    "clipscore": ("needs a CLIP model and the image: set `clipscore_model:` (a local CLIP folder) on a "
                  "satcore-vlm `vlm-caption` step, or have a plugin supply per-item values"),
}
_METEOR: list[Any] = []  # the process's one coco-caption Meteor (a JVM that loads its tables once)
_METEOR_LOCK = threading.Lock()


def coco_meteor(gts: Mapping[str, list[str]],
                res: Mapping[str, list[str]]) -> tuple[float | None, str | None]:
    """coco-caption's corpus METEOR of tokenised captions, or ``(None, reason)`` when it cannot run.

    Args:
        gts: item id → reference captions (tokens joined by one space).
        res: item id → ``[hypothesis]`` (same ids).

    Returns:
        ``(score, None)``: the score ``pycocoevalcap.meteor.meteor.Meteor.compute_score`` returns (the jar's
        aggregate over all items); ``(None, reason)`` without Java, without pycocoevalcap, or when the jar
        fails.
    """
    if not gts:
        return None, "no scored items"
    if shutil.which("java") is None:
        return None, ("needs Java for coco-caption's METEOR 1.5 jar: install a JRE (Debian: apt-get install "
                      "default-jre-headless) so that `java` is on PATH")
    try:
        from pycocoevalcap.meteor.meteor import Meteor
    except ImportError:
        return None, "needs pycocoevalcap (coco-caption's scorers): pip install pycocoevalcap"
    with _METEOR_LOCK:
        try:
            if not _METEOR:
                _METEOR.append(Meteor())
                atexit.register(close_meteor, _METEOR[0])
            score, _ = _METEOR[0].compute_score(dict(gts), dict(res))
        except Exception as exc:  # a dead or broken JVM: report it in metrics.json, start afresh next time
            for m in _METEOR:
                close_meteor(m)
            _METEOR.clear()
            return None, f"coco-caption's METEOR failed: {type(exc).__name__}: {exc}"
    return float(score), None

_CLITIC = re.compile(r"(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:[-.]\w+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case words with punctuation removed, roughly as coco-caption's PTB tokenizer does.

    Clitics are split (``don't`` → ``do n't``, ``cat's`` → ``cat 's``), hyphenated words and decimals stay
    one token, every other punctuation mark is dropped. Unlike the Stanford Java tokenizer this does not
    rewrite brackets or quotes (they are dropped), nor treat abbreviations specially.
    """
    return _TOKEN.findall(_CLITIC.sub(r"\1 \2", text.lower()))


def _ngrams(words: Sequence[str], n_max: int = MAX_N) -> Counter[str]:
    """n-gram counts for n = 1..n_max, each n-gram as its words joined by one space."""
    c: Counter[str] = Counter()
    for k in range(1, n_max + 1):
        for i in range(len(words) - k + 1):
            c[" ".join(words[i:i + k])] += 1
    return c


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hyp: Sequence[str], refs: Sequence[Sequence[str]], beta: float = 1.2) -> float:
    """coco-caption's ROUGE-L of one hypothesis: F_β of the best LCS precision and best LCS recall."""
    if not hyp:
        return 0.0
    lcs = [_lcs(r, hyp) for r in refs if r]
    if not lcs:
        return 0.0
    prec = max(c / len(hyp) for c in lcs)
    rec = max(c / len(r) for c, r in zip(lcs, [r for r in refs if r], strict=True))
    if prec == 0 or rec == 0:
        return 0.0
    return (1 + beta ** 2) * prec * rec / (rec + beta ** 2 * prec)


def captions_record(truth: Any, prediction: str | None, *, meteor: float | None = None,
                    bertscore_f1: float | None = None, clipscore: float | None = None) -> Record | None:
    """One item's caption record.

    Args:
        truth: the item's ``texts`` (reference captions).
        prediction: the generated caption.
        meteor: optional per-item METEOR from a plugin.
        bertscore_f1: optional per-item BERTScore F1 from a plugin.
        clipscore: optional per-item CLIPScore from a plugin.

    Returns:
        ``None`` without references or caption; else BLEU counts (``bleu_correct``, ``bleu_guess``,
        ``hyp_len``, ``ref_len``), ``rouge_l``, the hypothesis and reference n-grams for CIDEr-D
        (``hyp_ngrams``/``hyp_counts``, ``ref_ngrams``/``ref_counts``/``ref_index``, ``refs``) and the
        optional model scores.
    """
    refs_text = [str(t) for t in seq(truth) if not missing(t)]
    if prediction is None or missing(prediction) or not refs_text:
        return None
    hyp = tokenize(str(prediction))
    refs = [tokenize(t) for t in refs_text]
    hyp_c = _ngrams(hyp)
    ref_cs = [_ngrams(r) for r in refs]
    max_ref: Counter[str] = Counter()
    for rc in ref_cs:
        max_ref |= rc
    correct = [0] * MAX_N
    for g, c in hyp_c.items():
        correct[g.count(" ")] += min(c, max_ref[g])
    guess = [max(len(hyp) - k, 0) for k in range(MAX_N)]
    # closest reference length, ties to the shorter (coco-caption's "closest", nltk's corpus_bleu)
    ref_len = min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
    rec: Record = {
        "bleu_correct": correct, "bleu_guess": guess, "hyp_len": len(hyp), "ref_len": ref_len,
        "rouge_l": rouge_l(hyp, refs),
        "hyp_ngrams": list(hyp_c), "hyp_counts": list(hyp_c.values()),
        "ref_ngrams": [g for rc in ref_cs for g in rc],
        "ref_counts": [c for rc in ref_cs for c in rc.values()],
        "ref_index": [i for i, rc in enumerate(ref_cs) for _ in rc],
        "refs": len(refs),
        "hyp_text": " ".join(hyp), "ref_texts": [" ".join(r) for r in refs],  # METEOR's input
    }
    for key, val in (("meteor", meteor), ("bertscore_f1", bertscore_f1), ("clipscore", clipscore)):
        if val is not None:
            rec[key] = float(val)
    return rec


def close_meteor(meteor: Any) -> None:
    """Stop a ``pycocoevalcap`` ``Meteor``'s JVM and close its pipes (its own ``__del__`` leaves two open)."""
    proc = getattr(meteor, "meteor_p", None)
    if proc is None:
        return
    proc.kill()
    proc.wait()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            with contextlib.suppress(OSError, ValueError):
                f.close()


class CaptionsBlock:
    """Accumulates caption records into the ``captions`` block (see the module docstring for definitions).

    BLEU and ROUGE-L are running sums; CIDEr-D keeps each item's n-gram counts until :meth:`result`, because
    its document frequencies come from all references of the split.
    """

    name: ClassVar[str] = "captions"
    item_record = staticmethod(captions_record)

    def __init__(self, **settings: Any) -> None:
        self._seen = _Seen()
        self.correct = [0] * MAX_N
        self.guess = [0] * MAX_N
        self.hyp_len = 0
        self.ref_len = 0
        self.rouge = ExactSum()
        self.model = {k: ExactSum() for k in MODEL_SCORES}
        self.model_n = dict.fromkeys(MODEL_SCORES, 0)
        self.cider_items: dict[str, tuple[dict[str, int], list[dict[str, int]]]] = {}
        self.texts: dict[str, tuple[str, list[str]]] = {}

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        """Fold in one item's record."""
        self._seen.check(self.name, item_id)
        for k, (c, g) in enumerate(zip(seq(record.get("bleu_correct")), seq(record.get("bleu_guess")),
                                                   strict=True)):
            self.correct[k] += int(c)
            self.guess[k] += int(g)
        self.hyp_len += int(num(record.get("hyp_len")) or 0)
        self.ref_len += int(num(record.get("ref_len")) or 0)
        self.rouge.add(num(record.get("rouge_l")) or 0.0)
        for key in MODEL_SCORES:
            v = num(record.get(key))
            if v is not None and math.isfinite(v):
                self.model[key].add(v)
                self.model_n[key] += 1
        hyp = {str(g): int(c)
               for g, c in zip(seq(record.get("hyp_ngrams")), seq(record.get("hyp_counts")), strict=True)}
        refs: list[dict[str, int]] = [{} for _ in range(int(num(record.get("refs")) or 0))]
        for g, c, i in zip(seq(record.get("ref_ngrams")), seq(record.get("ref_counts")),
                           seq(record.get("ref_index")), strict=True):
            refs[int(i)][str(g)] = int(c)
        self.cider_items[item_id] = (hyp, refs)
        ref_texts = [str(t) for t in seq(record.get("ref_texts"))]
        if isinstance(record.get("hyp_text"), str) and ref_texts:
            self.texts[item_id] = (str(record["hyp_text"]), ref_texts)

    def result(self) -> dict[str, Any]:
        """The ``captions`` block."""
        n = len(self._seen)
        out: dict[str, Any] = {"items": n}
        for k in range(1, MAX_N + 1):
            val, why = self._bleu(k) if n else (None, "no scored items")
            put(out, f"bleu_{k}", val, why)
        self._meteor(out)
        put(out, "rouge_l", self.rouge.value / n if n else None, "no scored items")
        val, why = self._cider()
        put(out, "cider_d", val, why)
        self._model(out, "bertscore_f1")
        self._model(out, "clipscore")
        return out

    def _meteor(self, out: dict[str, Any]) -> None:
        ids = sorted(self.texts)  # METEOR's input in item-id order, so the result is order-free
        val, why = coco_meteor({i: self.texts[i][1] for i in ids}, {i: [self.texts[i][0]] for i in ids})
        if val is None and self.model_n["meteor"]:  # no jar here: a plugin's per-item values, as before
            self._model(out, "meteor")
            return
        if not ids and len(self._seen):
            why = "the records hold no caption texts (a journal written before METEOR was computed)"
        put(out, "meteor", val, why)
        if val is not None and 0 < len(ids) < len(self._seen):
            out["meteor_items"] = len(ids)

    def _model(self, out: dict[str, Any], k: str) -> None:
        m = self.model_n[k]
        put(out, k, self.model[k].value / m if m else None, MODEL_REASONS[k])
        if 0 < m < len(self._seen):
            out[f"{k}_items"] = m

    def _bleu(self, k: int) -> tuple[float | None, str | None]:
        if self.guess[k - 1] == 0:
            return None, f"no caption has {k} words"
        if any(c == 0 for c in self.correct[:k]):
            return 0.0, None
        log_p = sum(math.log(self.correct[i] / self.guess[i]) for i in range(k)) / k
        bp = 1.0 if self.hyp_len >= self.ref_len else math.exp(1 - self.ref_len / self.hyp_len)
        return bp * math.exp(log_p), None

    def _cider(self) -> tuple[float | None, str | None]:
        n = len(self.cider_items)
        if n < 2:
            return None, "CIDEr-D's document frequencies need at least 2 scored items"
        df: Counter[str] = Counter()
        for _, refs in self.cider_items.values():
            df.update({g for r in refs for g in r})
        log_n = math.log(n)

        def vec(counts: dict[str, int]) -> tuple[list[dict[str, float]], list[float], int]:
            v: list[dict[str, float]] = [{} for _ in range(MAX_N)]
            norm = [0.0] * MAX_N
            length = 0
            for g, tf in counts.items():
                k = g.count(" ")
                w = tf * (log_n - math.log(max(1.0, df[g])))
                v[k][g] = w
                norm[k] += w * w
                if k == 1:  # coco-caption counts bigrams as the length (= words - 1); kept for equality
                    length += tf
            return v, [math.sqrt(x) for x in norm], length

        total = ExactSum()
        for item_id in sorted(self.cider_items):
            hyp, refs = self.cider_items[item_id]
            vh, nh, lh = vec(hyp)
            score = [0.0] * MAX_N
            for r in refs:
                vr, nr, lr = vec(r)
                pen = math.exp(-((lh - lr) ** 2) / (2 * SIGMA ** 2))
                for k in range(MAX_N):
                    val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                    if nh[k] != 0 and nr[k] != 0:
                        val /= nh[k] * nr[k]
                    score[k] += val * pen
            total.add(sum(score) / MAX_N / max(len(refs), 1) * 10.0)
        return total.value / n, None
