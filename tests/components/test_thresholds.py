from __future__ import annotations

import numpy as np
import pytest
from pydantic import Field, ValidationError
from skimage.filters import threshold_otsu

from satcore.components import DetectorParams
from satcore.components.thresholds import (
    THRESHOLD_RULE_DESCRIPTION,
    Optimise,
    ThresholdRule,
    apply_threshold,
    needs_fit,
    otsu_threshold,
    resolve_threshold,
)
from satcore.evaluate.threshold import optimise_threshold


class ThirdPartyParams(DetectorParams):
    threshold: ThresholdRule = Field("otsu", description=THRESHOLD_RULE_DESCRIPTION)


@pytest.mark.parametrize("seed", range(8))
def test_otsu_equals_scikit_image(seed):
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(0, 1, 500 + 50 * seed), rng.normal(4 + seed, 0.5 + 0.1 * seed, 300)]
    ours, ref = otsu_threshold(x), float(threshold_otsu(x))
    bin_width = np.ptp(x) / 256
    assert abs(ours - ref) <= bin_width  # the brief: within one bin...
    assert ours == ref  # ...and in fact the same computation


def test_otsu_ignores_nan_and_handles_degenerate_input():
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(0, 1, 400), rng.normal(6, 1, 400)]
    assert otsu_threshold(np.r_[x, np.nan, np.inf]) == float(threshold_otsu(x))
    assert otsu_threshold(np.full(10, 4.0)) == 4.0
    assert otsu_threshold(np.array([np.nan])) == 0.0


def test_otsu_splits_two_modes():
    x = np.r_[np.zeros(100), np.ones(100) * 10]
    t = otsu_threshold(x)
    assert 0 < t < 10


def test_the_field_accepts_the_three_rules_as_the_builtins_do():
    assert ThirdPartyParams().threshold == "otsu"
    assert ThirdPartyParams(threshold=0.25).threshold == 0.25
    rule = ThirdPartyParams.model_validate({"threshold": {"optimise": "recall"}}).threshold
    assert isinstance(rule, Optimise) and rule.optimise == "recall" and needs_fit(rule)
    assert not needs_fit("otsu") and not needs_fit(0.3)
    for bad in ("mean", {"optimise": "auc"}, {"optimise": "f1", "extra": 1}):
        with pytest.raises(ValidationError):
            ThirdPartyParams(threshold=bad)


def test_apply_threshold_fixed_otsu_and_fitted():
    rng = np.random.default_rng(3)
    score = rng.random((20, 30))
    score[2, 3] = np.nan
    labels, t = apply_threshold(score, 0.5)
    assert t == 0.5
    np.testing.assert_array_equal(labels, np.nan_to_num(score, nan=0) > 0.5)
    assert not labels[2, 3]
    labels, t = apply_threshold(score, "otsu")
    assert t == float(threshold_otsu(score[np.isfinite(score)]))
    # optimised: the value comes from fit(); here from the core's optimiser on planted train scores
    train, y = np.r_[rng.random(50) * 0.4, 0.6 + rng.random(50) * 0.4], np.r_[np.zeros(50), np.ones(50)]
    fitted, f1 = optimise_threshold(train, y, "f1")
    assert f1 == 1.0 and 0.4 <= fitted <= 0.6
    labels, t = apply_threshold(score, Optimise(optimise="f1"), fitted=fitted)
    assert t == fitted
    np.testing.assert_array_equal(labels, np.nan_to_num(score, nan=0) > fitted)


def test_an_unfitted_optimised_rule_says_what_is_missing():
    with pytest.raises(ValueError, match="no fitted value"):
        resolve_threshold(np.zeros(3), Optimise())
    with pytest.raises(ValueError, match="unknown threshold rule"):
        resolve_threshold(np.zeros(3), "mean")  # type: ignore[arg-type]
