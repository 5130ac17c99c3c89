"""A vlm-caption run's captions block (metrics.json) against coco-caption's scorers called directly.

METEOR needs Java: skipped without it, except in CI (``CI=true``, which installs it), where it fails.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil

import pytest

from satcore.evaluate.blocks import tokenize
from satcore.testing import run_pipeline


@pytest.mark.slow  # two JVMs (the block's METEOR and the reference's) and a model: ~20-60 s
def test_vlm_caption_metrics_equal_pycocoevalcap(tmp_path, tiny_blip, scenes_manifest):
    if shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no `java` on PATH: METEOR must be computed in CI")
        pytest.skip("no Java: coco-caption's METEOR cannot run here (CI has it)")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge

    from satcore.evaluate.blocks.captions import close_meteor

    out = run_pipeline({
        "source": {"type": "manifest", "path": str(scenes_manifest)},
        "steps": [{"id": "cap", "type": "vlm-caption", "model": str(tiny_blip), "max_new_tokens": 10}],
        "execution": {"batch_size": 4, "device": "cpu"}}, tmp_path)
    assert not out.errors
    block = out.metrics["steps"]["cap"]["all"]["captions"]
    caps = {i: list(c)[0] for i, c in zip(out.table["item_id"], out.table["cap.captions"], strict=True)}
    rows = [r.split(",") for r in scenes_manifest.read_text().splitlines()[1:]]
    gts = {r[0]: [" ".join(tokenize(t)) for t in r[3].split("|")] for r in sorted(rows)}
    res = {i: [" ".join(tokenize(caps[i]))] for i in gts}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res)
    scorer = Meteor()
    try:
        meteor, _ = scorer.compute_score(gts, res)
    finally:
        close_meteor(scorer)
    assert block["items"] == 4
    # random tiny-model captions can miss every 3-gram: coco-caption then reports ~1e-9, satcore 0
    assert [block[f"bleu_{k}"] for k in range(1, 5)] == pytest.approx(bleu, rel=1e-6, abs=1e-6)
    assert block["meteor"] == pytest.approx(meteor, rel=1e-12)
    assert block["rouge_l"] == pytest.approx(Rouge().compute_score(gts, res)[0], rel=1e-12)
    assert block["cider_d"] == pytest.approx(Cider().compute_score(gts, res)[0], rel=1e-9, abs=1e-12)
    assert block["bertscore_f1"] is None and "bertscore_model" in block["bertscore_f1_reason"]
