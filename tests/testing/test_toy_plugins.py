"""The toy plugins (``tests.toyplugins``) pass their contracts and compute what their docstring says; the
contract kit catches a generator that drops georeferencing, one without images, and broken extension points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from satcore.components import Batch, Generator, Params
from satcore.data import Item, Raster
from satcore.testing import (
    CaptionerContract,
    ComponentContract,
    GeneratorContract,
    RecognizerContract,
    make_class_items,
    make_target_items,
)
from satcore.testing.contracts import check_generated
from tests.toyplugins import TOY_COMPONENTS, ToyCaptioner, ToyGenerator, ToyRecognizer, brightness

LABELS = ["dark", "dim", "light", "bright"]


# ------------------------------------------------------------------------------------------ the contracts

class TestToyRecognizer(RecognizerContract):
    component = ToyRecognizer
    params: ClassVar[dict[str, Any]] = {"labels": LABELS}


class TestToyRecognizerOnPairs(RecognizerContract):
    component = ToyRecognizer
    params: ClassVar[dict[str, Any]] = {"labels": LABELS}

    def make_items(self) -> list[Item]:
        return make_class_items(self.n_items, kind="pair")


class TestToyCaptioner(CaptionerContract):
    component = ToyCaptioner


class TestToyCaptionerOnSeries(CaptionerContract):
    component = ToyCaptioner

    def make_items(self) -> list[Item]:
        return make_class_items(self.n_items, kind="series")


class TestToyGenerator(GeneratorContract):
    component = ToyGenerator


# ------------------------------------------------------------------------------------------ their outputs

def _raster(rgb_means: tuple[float, float, float], dtype: Any = np.uint8) -> Raster:
    return Raster(np.stack([np.full((4, 4), v) for v in rgb_means]).astype(dtype))


def test_recognizer_scores_by_hand(build_component):
    rec = build_component(ToyRecognizer, labels=LABELS)
    img = _raster((255, 51, 0))  # brightness (1 + 0.2 + 0) / 3 = 0.4
    [res] = rec.process(Batch([Item("x", [img])]))
    # label centres 0.125, 0.375, 0.625, 0.875: distances 0.275, 0.025, 0.225, 0.475
    assert res["labels"] == ["dim", "light", "dark", "bright"]
    np.testing.assert_allclose(res["scores"], [-0.025, -0.225, -0.275, -0.475])
    assert "images" not in res


def test_recognizer_ranks_each_image_of_a_pair(build_component):
    rec = build_component(ToyRecognizer, labels=["dark", "bright"])
    pair = Item("p", [_raster((10, 10, 10)), _raster((250, 250, 250))])
    [res] = rec.process(Batch([pair]))
    assert [r["labels"][0] for r in res["images"]] == ["dark", "bright"]
    assert res["labels"] == res["images"][0]["labels"]  # the item's ranking is its reference image's


def test_recognizer_ties_keep_the_order_of_the_labels(build_component):
    rec = build_component(ToyRecognizer, labels=["a", "b"])
    [res] = rec.process(Batch([Item("x", [_raster((0.5, 0.5, 0.5), np.float32)])]))
    assert res["labels"] == ["a", "b"] and res["scores"][0] == res["scores"][1] == -0.25


@pytest.mark.parametrize("means, caption", [
    ((200, 180, 160), "a bright red scene"),     # brightness 0.706
    ((20, 90, 30), "a dark green scene"),
    ((0.2, 0.3, 0.9), "a dark blue scene"),       # float32: taken as it is, brightness 0.467
    ((0.9, 0.8, 0.3), "a bright red scene"),      # brightness 0.667
])
def test_captions_by_hand(build_component, means, caption):
    cap = build_component(ToyCaptioner)
    img = _raster(means, np.float32 if max(means) <= 1 else np.uint8)
    assert np.isclose(brightness(img), np.mean(means) / (1 if max(means) <= 1 else 255))
    [res] = cap.process(Batch([Item("x", [img])]))
    assert res == {"captions": [caption]}


def test_generator_keeps_the_grid_and_georeference(build_component):
    gen = build_component(ToyGenerator)
    item = make_target_items(1)[0]
    [res] = gen.process(Batch([item]))
    [out] = res["images"]
    ref = item.reference
    assert out.array.dtype == np.float32 and out.band_names == ("red", "green", "blue", "mean")
    assert out.crs == ref.crs and ref.crs is not None and out.transform == ref.transform
    src = ref.array[:3].astype(np.float64)
    np.testing.assert_allclose(out.array[3], src.mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(out.array[:3], src.astype(np.float32))


def test_toy_components_register_through_the_fixture(register_components, satcore_pm):
    register_components(*TOY_COMPONENTS, name="toyplugins")
    catalogue = satcore_pm.catalogue()
    assert catalogue["recognizer"]["toy-recognizer"] is ToyRecognizer
    assert catalogue["captioner"]["toy-captioner"] is ToyCaptioner
    assert catalogue["generator"]["toy-generator"] is ToyGenerator


# ------------------------------------------------------------------------------------------ the kit catches

class GeoDroppingGenerator(Generator):
    """Same pixels as the toy generator, but a bare Raster: the CRS and transform are lost."""

    name = "geo-dropping"
    params_model = Params

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            arr = item.reference.array.astype(np.float32)
            out.append({"images": [Raster(arr, band_names=item.reference.band_names)]})
        return out


class NoImagesGenerator(GeoDroppingGenerator):
    """Returns its raster under a key the engine does not read."""

    name = "no-images"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"raster": r["images"][0]} for r in super().process(batch)]


def test_the_generator_contract_catches_dropped_georeferencing(tmp_path: Path):
    item = make_target_items(1)[0]
    [res] = GeoDroppingGenerator(Params()).process(Batch([item]))
    [problem] = check_generated(res, item)
    assert "not georeferenced as the input" in problem and "with_array" in problem
    contract = type("TestGeoDropping", (GeneratorContract,), {"component": GeoDroppingGenerator})()
    with pytest.raises(AssertionError, match="not georeferenced as the input"):
        contract.test_one_result_per_item_in_order(tmp_path)
    # the same check passes the toy generator, which copies the georeference with with_array
    assert check_generated(ToyGenerator(Params()).process(Batch([item]))[0], item) == []


def test_a_raster_on_another_grid_may_carry_its_own_georeference():
    item = make_target_items(1)[0]
    coarse = Raster(np.zeros((1, 8, 8), np.float32))  # not the input's 32×32 grid: not compared
    assert check_generated({"images": [coarse]}, item) == []
    assert check_generated({"image": coarse}, item) == []


def test_the_generator_contract_catches_a_result_without_images(tmp_path: Path):
    item = make_target_items(1)[0]
    assert "per item, got" in check_generated({"raster": item.reference}, item)[0]
    assert "empty" in check_generated({"images": []}, item)[0]
    assert "not a satcore.data.Raster" in check_generated({"images": [np.zeros((3, 4, 4))]}, item)[0]
    contract = type("TestNoImages", (GeneratorContract,), {"component": NoImagesGenerator})()
    with pytest.raises(AssertionError, match=r"returns \{'images'"):
        contract.test_one_result_per_item_in_order(tmp_path)


class PlainMethodSections(ToyCaptioner):
    """report_sections as a plain method: `satcore report` calls it on the class and would break."""

    name = "plain-sections"

    def report_sections(self, run_dir: Path, step_id: str, results: Any) -> list[tuple[str, str]]:  # type: ignore[override]
        return []


def test_the_base_contract_checks_extension_points():
    good = type("TestGood", (ComponentContract,), {"component": ToyCaptioner, "kind": "captioner"})()
    good.test_extension_points()
    bad = type("TestBad", (ComponentContract,), {"component": PlainMethodSections, "kind": "captioner"})()
    with pytest.raises(AssertionError, match="report_sections must be a @classmethod"):
        bad.test_extension_points()
