"""The captions block against coco-caption's scorers (pycocoevalcap) and nltk's corpus_bleu."""

from __future__ import annotations

import numpy as np
import pytest

from satcore.evaluate.blocks import CaptionsBlock, captions_record, tokenize

WORDS = ["a", "the", "green", "field", "river", "road", "near", "two", "some", "many", "houses", "trees",
         "with", "and", "of", "large", "small"]


def _corpus(seed: int, n: int = 25, min_words: int = 2):
    rng = np.random.default_rng(seed)

    def sentence():
        return " ".join(rng.choice(WORDS, rng.integers(4, 12)))

    refs = [[sentence() for _ in range(rng.integers(1, 6))] for _ in range(n)]
    # hypotheses share words with their references, so every n-gram order has matches
    hyps = []
    for r in refs:
        words = r[0].split()
        cut = rng.integers(min_words, len(words) + 1)
        hyps.append(" ".join(words[:cut] + rng.choice(WORDS, rng.integers(0, 4)).tolist()))
    return refs, hyps


def _coco(refs, hyps):
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {str(i): [" ".join(tokenize(t)) for t in r] for i, r in enumerate(refs)}
    res = {str(i): [" ".join(tokenize(h))] for i, h in enumerate(hyps)}
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # Bleu prints its counts
        bleu, _ = Bleu(4).compute_score(gts, res)
    return bleu, Rouge().compute_score(gts, res)[0], Cider().compute_score(gts, res)[0]


@pytest.mark.parametrize("seed", range(4))
def test_equals_coco_caption(seed, block_result):
    refs, hyps = _corpus(seed)
    out = block_result(CaptionsBlock, {f"c{i}": captions_record(r, h) for i, (r, h) in
                                       enumerate(zip(refs, hyps, strict=True))})
    bleu, rouge, cider = _coco(refs, hyps)
    assert out["items"] == len(refs)
    # coco-caption adds 1e-15 / 1e-9 to each precision: equal to ~1e-8 relative
    assert [out[f"bleu_{k}"] for k in range(1, 5)] == pytest.approx(bleu, rel=1e-6)
    assert out["rouge_l"] == pytest.approx(rouge, rel=1e-12)
    assert out["cider_d"] == pytest.approx(cider, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_bleu_equals_nltk_corpus_bleu(seed, block_result):
    from nltk.translate.bleu_score import corpus_bleu

    # captions of 4 words or more: nltk counts a 1 in the denominator of an n-gram order a caption is too
    # short for (modified_precision's max(1, ·)); coco-caption and satcore count 0
    refs, hyps = _corpus(seed + 10, min_words=4)
    out = block_result(CaptionsBlock, {f"c{i}": captions_record(r, h) for i, (r, h) in
                                       enumerate(zip(refs, hyps, strict=True))})
    list_of_refs = [[tokenize(t) for t in r] for r in refs]
    hyp_toks = [tokenize(h) for h in hyps]
    for k in range(1, 5):
        ref = corpus_bleu(list_of_refs, hyp_toks, weights=tuple([1 / k] * k))
        assert out[f"bleu_{k}"] == pytest.approx(ref, rel=1e-12)


def test_order_does_not_matter(block_result):
    refs, hyps = _corpus(3)
    recs = {f"c{i}": captions_record(r, h, clipscore=0.1 * i) for i, (r, h) in
            enumerate(zip(refs, hyps, strict=True))}
    assert block_result(CaptionsBlock, recs, seed=1) == block_result(CaptionsBlock, recs)


def test_a_wrong_caption_lowers_the_scores_as_coco_caption_does(block_result):
    refs, hyps = _corpus(5)
    bad = list(hyps)
    bad[0] = "zebra zebra zebra zebra zebra"
    good_out = block_result(CaptionsBlock, {f"c{i}": captions_record(r, h) for i, (r, h) in
                                            enumerate(zip(refs, hyps, strict=True))})
    bad_out = block_result(CaptionsBlock, {f"c{i}": captions_record(r, h) for i, (r, h) in
                                           enumerate(zip(refs, bad, strict=True))})
    bleu, rouge, cider = _coco(refs, bad)
    assert bad_out["bleu_1"] == pytest.approx(bleu[0], rel=1e-6)
    assert bad_out["rouge_l"] == pytest.approx(rouge)
    assert bad_out["cider_d"] == pytest.approx(cider)
    assert bad_out["bleu_1"] < good_out["bleu_1"]
    assert bad_out["cider_d"] < good_out["cider_d"]


def test_model_scores_are_null_with_reason_unless_a_plugin_supplies_them(block_result):
    refs, hyps = _corpus(1, n=4)
    out = block_result(CaptionsBlock, {f"c{i}": captions_record(r, h) for i, (r, h) in
                                       enumerate(zip(refs, hyps, strict=True))})
    # (METEOR is computed by the block itself: tests/evaluate/test_captions_meteor.py)
    for k, word in (("bertscore_f1", "bertscore_model"), ("clipscore", "clipscore_model")):
        assert out[k] is None and word in out[f"{k}_reason"]
    # per-item values from a plugin: averaged over the items that have them
    recs = {f"c{i}": captions_record(r, h, clipscore=[0.2, 0.4, None, 0.9][i])
            for i, (r, h) in enumerate(zip(refs, hyps, strict=True))}
    out = block_result(CaptionsBlock, recs)
    assert out["clipscore"] == pytest.approx(0.5)
    assert out["clipscore_items"] == 3


def test_undefined_values(block_result):
    assert captions_record(["a cat"], None) is None
    assert captions_record([], "a cat") is None
    # one item: no document frequencies for CIDEr-D; a two-word caption has no 3-grams
    out = block_result(CaptionsBlock, {"x": captions_record(["a dog runs fast"], "a dog")})
    assert out["cider_d"] is None and "at least 2" in out["cider_d_reason"]
    assert out["bleu_3"] is None and out["bleu_3_reason"] == "no caption has 3 words"
    # no 2-gram match: BLEU-2 is 0 (coco-caption would give a tiny positive number)
    out = block_result(CaptionsBlock, {"x": captions_record(["dog a"], "a dog"),
                                       "y": captions_record(["cat a"], "a cat")})
    assert out["bleu_2"] == 0.0 and out["bleu_1"] == 1.0
    out = block_result(CaptionsBlock, {}, parquet=False)
    assert out["items"] == 0 and out["rouge_l"] is None and out["bleu_1_reason"] == "no scored items"


def test_tokenize_like_ptb_without_punctuation():
    assert tokenize("A dog's toy, isn't it?") == ["a", "dog", "'s", "toy", "is", "n't", "it"]
    assert tokenize("Well-known (3.5 km) river.") == ["well-known", "3.5", "km", "river"]
