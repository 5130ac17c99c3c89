"""Per-class augmentation copies (issue 13): LEVIR-CD's 637 pairs → the thesis's 746 with one copy per
unchanged pair.

The thesis gives 637 pairs and 746 after augmentation, and one copy per minority item: so 746 − 637 = 109
unchanged pairs (the minority) and 528 changed ones — the class counts used here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from satcore.evaluate.augment import copies_per_class
from satcore.spec.model import AugmentSpec
from tests.evaluate.test_augment import RecordingDetector, make_tiles, run_recording

LEVIR_CHANGED, LEVIR_UNCHANGED = 528, 109


@pytest.mark.parametrize("copies", [{0: 1, 1: 0}, {"unchanged": 1}, {"no change": 1, "changed": 0}])
def test_copies_by_class_key_or_name(copies):
    spec = AugmentSpec(copies=copies)
    assert spec.copies == {0: 1, 1: 0}
    labels = np.r_[np.ones(LEVIR_CHANGED, int), np.zeros(LEVIR_UNCHANGED, int)]
    per = copies_per_class(labels, spec.copies, spec.balance)  # balance is not applied to explicit copies
    assert len(labels) + sum(per[c] * int((labels == c).sum()) for c in (0, 1)) == 746


@pytest.mark.parametrize("bad", [{"moved": 1}, {0: -1}, -2])
def test_bad_copies_are_refused(bad):
    with pytest.raises(ValidationError):
        AugmentSpec(copies=bad)


def test_637_pairs_become_746_in_the_fit(tmp_path: Path) -> None:
    """A synthetic set with LEVIR-CD's class counts, all in the release's train/ folder: the fit sees 746."""
    make_tiles(tmp_path / "data" / "train", tiles=LEVIR_CHANGED + LEVIR_UNCHANGED, crops=1,
               changed_tiles=LEVIR_CHANGED, size=16)
    run_recording(tmp_path, {"copies": {"unchanged": 1, "changed": 0}}, split={"by": "split"})
    seen = RecordingDetector.seen
    originals = [lab for i, lab, _ in seen if "#aug" not in i]
    copies = [lab for i, lab, _ in seen if "#aug" in i]
    assert (len(originals), sum(originals)) == (637, LEVIR_CHANGED)
    assert len(originals) + len(copies) == 746
    assert copies == [0] * LEVIR_UNCHANGED  # one copy per unchanged pair; a copy of one stays unchanged
