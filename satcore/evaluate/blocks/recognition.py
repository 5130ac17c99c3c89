"""``recognition``: top-1/top-5 accuracy, macro and per-class precision/recall/F1, confusion, baseline.

Definitions follow scikit-learn: ``accuracy_score`` / ``top_k_accuracy_score`` for top-k,
``precision_recall_fscore_support(average="macro", zero_division=np.nan)`` for the macro scores (a class
whose precision or recall is undefined is left out of that average, and shown as ``null`` with a reason in
``per_class``), ``confusion_matrix`` (rows: true class, columns: predicted class). All of it comes from
integer counts, so memory does not grow with the split and the result does not depend on item order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from satcore.evaluate.blocks.base import Record, _Seen, listlike, num, put, seq

TOP_K = 5


def _units(x: Any) -> list[list[Any]] | None:
    """A flat list (one unit) or a list of per-image lists; ``None`` when ``x`` is ``None``."""
    if x is None:
        return None
    if isinstance(x, str):
        return [[x]]
    items = seq(x)
    if not items:
        return [[]]  # an empty prediction is one unit that predicts nothing (a miss)
    if all(listlike(v) for v in items):
        return [seq(v) for v in items]
    return [items]


def recognition_record(truth: Any, prediction: Any, scores: Any = None, *,
                       threshold: float | None = None) -> Record | None:
    """One item's recognition record.

    Args:
        truth: the item's ``classes``: a list of label strings (one or several), or for pairs and series one
            such list per image.
        prediction: ranked labels, best first: a list of strings, or one list per image.
        scores: optional scores aligned with ``prediction`` (same nesting); used only with ``threshold``.
        threshold: multi-label only: predict the labels whose score is ``>= threshold``. Without it (or
            without scores) a multi-label unit predicts its top-|truth| labels.

    Returns:
        ``None`` when there is no truth or the prediction is ``None`` (an empty list is a miss). Otherwise
        parallel flat lists (Parquet-friendly):
        ``truth``/``truth_unit``, ``top``/``top_unit`` (first 5 ranked labels), ``predicted``/
        ``predicted_unit`` (the predicted label set), and ``units`` (images scored).

    Per image: when both sides are per image they must have as many images; when one side is flat it
    applies to every image of the other (e.g. one scene class for both dates of a pair).
    """
    t_units, p_units = _units(truth), _units(prediction)
    if not t_units or p_units is None or not any(t_units):
        return None
    s_units = _units(scores) if scores is not None else None
    n = max(len(t_units), len(p_units))
    for name, u in (("truth", t_units), ("prediction", p_units), ("scores", s_units)):
        if u is not None and len(u) not in (1, n):
            raise ValueError(f"recognition: {name} has {len(u)} images, the item has {n}; give one list per "
                             "image or one flat list for all")
    rec: dict[str, list[Any]] = {k: [] for k in ("truth", "truth_unit", "top", "top_unit", "predicted",
                                                  "predicted_unit")}
    units = 0
    for i in range(n):
        t = list(dict.fromkeys(str(v) for v in t_units[i if len(t_units) > 1 else 0]))
        if not t:
            continue  # an image without truth is not scored
        p = [str(v) for v in p_units[i if len(p_units) > 1 else 0]]
        s = None if s_units is None else [float(v) for v in s_units[i if len(s_units) > 1 else 0]]
        if s is not None and len(s) != len(p):
            raise ValueError(f"recognition: {len(s)} scores for {len(p)} predicted labels")
        if len(t) == 1:
            pred_set = p[:1]
        elif threshold is not None and s is not None:
            pred_set = [lab for lab, sc in zip(p, s, strict=True) if sc >= threshold]
        else:
            pred_set = p[:len(t)]
        rec["truth"] += t
        rec["truth_unit"] += [units] * len(t)
        top = p[:TOP_K]
        rec["top"] += top
        rec["top_unit"] += [units] * len(top)
        pred_set = list(dict.fromkeys(pred_set))
        rec["predicted"] += pred_set
        rec["predicted_unit"] += [units] * len(pred_set)
        units += 1
    if units == 0:
        return None
    return {**rec, "units": units}


def _group(labels: list[Any], unit: list[Any], n: int) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in range(n)]
    for lab, u in zip(labels, unit, strict=True):
        out[int(u)].append(str(lab))
    return out


class RecognitionBlock:
    """Accumulates recognition records into the ``recognition`` block.

    Single-label (every scored unit has one true class): the predicted class is the top-1 label; macro
    scores and the confusion matrix compare it with the true class, as scikit-learn does on
    ``(y_true, y_pred)``. Multi-label (some unit has several): each label is scored one-vs-rest on the
    predicted label *set* (see :func:`recognition_record`), as scikit-learn does on binarised indicator
    matrices; there is no single confusion matrix then (``null`` with a reason). Top-k is a hit when any
    true label is among the first k ranked labels, in both cases.

    The baseline always predicts the majority class of the scored split's own truth (ties: the
    alphabetically first label); its ``top1`` is the fraction of units whose truth holds that class.
    """

    name: ClassVar[str] = "recognition"
    item_record = staticmethod(recognition_record)

    def __init__(self, **settings: Any) -> None:
        self._seen = _Seen()
        self.units = 0
        self.hit1 = 0
        self.hit5 = 0
        self.multi = False
        self.no_prediction = 0
        self.support: Counter[str] = Counter()
        self.tp: Counter[str] = Counter()
        self.n_pred: Counter[str] = Counter()
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.pair_labels: set[str] = set()

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        """Fold in one item's record."""
        self._seen.check(self.name, item_id)
        n = int(num(record.get("units")) or 0)
        truth = _group(seq(record.get("truth")), seq(record.get("truth_unit")), n)
        top = _group(seq(record.get("top")), seq(record.get("top_unit")), n)
        pred = _group(seq(record.get("predicted")), seq(record.get("predicted_unit")), n)
        for t, r, p in zip(truth, top, pred, strict=True):
            ts = set(t)
            self.units += 1
            self.multi |= len(ts) > 1
            self.hit1 += bool(ts & set(r[:1]))
            self.hit5 += bool(ts & set(r[:TOP_K]))
            self.support.update(ts)
            ps = set(p)
            self.n_pred.update(ps)
            self.tp.update(ts & ps)
            if r:
                self.pairs[(t[0], r[0])] += 1
                self.pair_labels.update((t[0], r[0]))
            else:
                self.no_prediction += 1

    def result(self) -> dict[str, Any]:
        """The ``recognition`` block."""
        out: dict[str, Any] = {"items": len(self._seen), "images": self.units}
        if self.units == 0:
            for k in ("top1", "top5", "precision", "recall", "f1"):
                put(out, k, None, "no scored items")
            out.update(per_class={}, confusion=None, confusion_reason="no scored items", baseline=None,
                       baseline_reason="no scored items", multilabel=False)
            return out
        out["multilabel"] = self.multi
        put(out, "top1", self.hit1 / self.units)
        put(out, "top5", self.hit5 / self.units)
        labels = sorted(set(self.support) | set(self.n_pred))
        per_class: dict[str, Any] = {}
        sums: dict[str, list[float]] = {"precision": [], "recall": [], "f1": []}
        for lab in labels:
            tp, npred, sup = self.tp[lab], self.n_pred[lab], self.support[lab]
            entry: dict[str, Any] = {}
            put(entry, "precision", tp / npred if npred else None, "never predicted")
            put(entry, "recall", tp / sup if sup else None, "not in this split's truth")
            put(entry, "f1", 2 * tp / (npred + sup))  # npred + sup > 0: the label was seen on one side
            entry["support"] = sup
            per_class[lab] = entry
            for k in sums:
                if entry[k] is not None:
                    sums[k].append(entry[k])
        for k, vals in sums.items():
            # scikit-learn's macro average with zero_division=nan: the mean over the classes where defined
            put(out, k, sum(vals) / len(vals) if vals else None, f"undefined for every class ({k})")
        out["per_class"] = per_class
        if self.multi:
            out["confusion"] = None
            out["confusion_reason"] = ("multi-label truth has no single confusion matrix; per_class gives "
                                       "each label's one-vs-rest scores")
        else:
            cl = sorted(self.pair_labels)
            idx = {lab: i for i, lab in enumerate(cl)}
            matrix = [[0] * len(cl) for _ in cl]
            for (t, p), c in self.pairs.items():
                matrix[idx[t]][idx[p]] += c
            out["confusion"] = {"labels": cl, "matrix": matrix}
        if self.no_prediction:
            out["no_prediction"] = self.no_prediction
        top_count = max(self.support.values())
        majority = min(lab for lab, c in self.support.items() if c == top_count)
        out["baseline"] = {"top1": top_count / self.units, "label": majority,
                           "rule": "majority class of this split's truth"}
        return out
