"""The captions block against coco-caption's four scorers called directly, and BLEU worked out by hand.

METEOR runs coco-caption's Java jar: without Java these tests skip, except in CI (``CI=true``), which
installs Java, where a missing METEOR fails.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
from fractions import Fraction

import pytest

from satcore.evaluate.blocks import CaptionsBlock, captions_record, tokenize
from satcore.evaluate.blocks import captions as captions_mod

# (references, hypothesis) per item; chosen so that the closest reference length differs from the shortest
# (item a: hypothesis 6 words, references 6 and 5) and from the longest (item b: 3 words, references 4, 6)
TINY = {
    "a": (["The cat is on the mat.", "A cat on a mat"], "the cat sat on the mat"),
    "b": (["a dog runs fast", "a dog runs along the road"], "A dog runs!"),
    "c": (["two houses near a road", "some houses by the road"], "two houses near a road"),
}


def _java() -> None:
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but `java` is not on PATH: .ci/run installs default-jre-headless for METEOR")
        pytest.skip("no Java here: coco-caption's METEOR cannot run (CI has it)")


def _coco_dicts(items):
    gts = {k: [" ".join(tokenize(t)) for t in refs] for k, (refs, _) in sorted(items.items())}
    res = {k: [" ".join(tokenize(h))] for k, (_, h) in sorted(items.items())}
    return gts, res


def _block(block_result, items):
    return block_result(CaptionsBlock, {k: captions_record(refs, h) for k, (refs, h) in items.items()})


def test_bleu_by_hand(block_result):
    # clipped n-gram matches / hypothesis n-grams, per item (a, b, c), from the sentences above:
    #  1-grams: a: the×2 cat on mat match, sat not (5/6); b: a dog runs (3/3); c: all (5/5)
    #  2-grams: a: "the cat", "on the", "the mat" (3/5); b: "a dog", "dog runs" (2/2); c: 4/4
    #  3-grams: a: "on the mat" (1/4); b: "a dog runs" (1/1); c: 3/3
    #  4-grams: a: none (0/3); b: the hypothesis has no 4-gram (0/0); c: 2/2
    p = [Fraction(5 + 3 + 5, 6 + 3 + 5), Fraction(3 + 2 + 4, 5 + 2 + 4), Fraction(1 + 1 + 3, 4 + 1 + 3),
         Fraction(0 + 0 + 2, 3 + 0 + 2)]
    c = 6 + 3 + 5  # hypothesis words
    # closest reference length per item: a: 6 (of 6, 5), b: 4 (of 4, 6), c: 5 (of 5, 5)
    r = 6 + 4 + 5
    bp = math.exp(1 - r / c)  # c < r: the brevity penalty applies
    want = [bp * math.exp(sum(math.log(p[i]) for i in range(n)) / n) for n in range(1, 5)]
    out = _block(block_result, TINY)
    got = [out[f"bleu_{n}"] for n in range(1, 5)]
    assert got == pytest.approx(want, rel=1e-12)
    # with the shortest reference (r = 5 + 4 + 5 = c) there would be no penalty: this example tells them apart
    assert got[0] < float(p[0]) - 0.05

    from pycocoevalcap.bleu.bleu import Bleu

    gts, res = _coco_dicts(TINY)
    with contextlib.redirect_stdout(io.StringIO()):
        coco, _ = Bleu(4).compute_score(gts, res)  # option "closest" (its default)
    assert coco == pytest.approx(want, rel=1e-6)  # coco-caption adds 1e-9 to each precision


@pytest.mark.slow  # starts a second JVM (coco-caption's own Meteor), ~5-15 s
def test_equals_the_four_coco_scorers(block_result):
    _java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    items = dict(TINY)
    items["d"] = (["a green field with many trees", "trees around a field"], "a field and some trees")
    items["e"] = (["a river near some houses"], "many houses by the river")
    gts, res = _coco_dicts(items)
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res)
    scorer = Meteor()
    try:
        meteor, per_item = scorer.compute_score(gts, res)
    finally:
        captions_mod.close_meteor(scorer)
    out = _block(block_result, items)
    assert [out[f"bleu_{n}"] for n in range(1, 5)] == pytest.approx(bleu, rel=1e-6)
    assert out["rouge_l"] == pytest.approx(Rouge().compute_score(gts, res)[0], rel=1e-12)
    assert out["cider_d"] == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-9)
    # METEOR: the jar's corpus aggregate, which is not the mean of its per-item scores
    assert out["meteor"] == pytest.approx(meteor, rel=1e-12)
    assert abs(sum(per_item) / len(per_item) - meteor) > 1e-3
    assert "meteor_reason" not in out


def test_meteor_is_order_free_and_counts_only_items_with_texts(block_result):
    _java()
    recs = {k: captions_record(refs, h) for k, (refs, h) in TINY.items()}
    assert block_result(CaptionsBlock, recs, seed=3)["meteor"] == block_result(CaptionsBlock, recs)["meteor"]
    # a record from an older journal (no texts) is left out of METEOR and counted
    old = {k: v for k, v in recs["a"].items() if k not in ("hyp_text", "ref_texts")}
    out = block_result(CaptionsBlock, {**recs, "a": old})
    assert out["meteor_items"] == 2 and out["items"] == 3


def test_meteor_without_java_is_null_with_a_reason(block_result, monkeypatch):
    monkeypatch.setattr(captions_mod.shutil, "which", lambda name: None)
    out = _block(block_result, TINY)
    assert out["meteor"] is None and "needs Java" in out["meteor_reason"]
    assert out["bleu_1"] is not None  # the rest of the block is unaffected
    # a plugin's per-item values are used instead, as before
    recs = {k: captions_record(refs, h, meteor=0.1 * i) for i, (k, (refs, h)) in enumerate(TINY.items())}
    assert block_result(CaptionsBlock, recs)["meteor"] == pytest.approx(0.1)


def test_meteor_failure_is_reported_not_raised(block_result, monkeypatch):
    _java()

    class Broken:
        def compute_score(self, gts, res):
            raise ValueError("could not convert string to float: ''")

    monkeypatch.setattr(captions_mod, "_METEOR", [Broken()])
    out = _block(block_result, TINY)
    assert out["meteor"] is None and "METEOR failed" in out["meteor_reason"]
    assert captions_mod._METEOR == []  # started afresh next time
