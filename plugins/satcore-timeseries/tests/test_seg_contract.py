"""satcore's extractor contract for ``segmentation-probs`` (a random tiny checkpoint, no training)."""

from __future__ import annotations

import numpy as np
import pytest

from satcore.testing import ExtractorContract
from satcore.testing.data import make_class_items

torch = pytest.importorskip("torch")


def write_random_checkpoint(path):
    """A small-UNet checkpoint with random weights, in the format `satcore train segmentation` writes."""
    from satcore_timeseries import dubai, unet

    torch.manual_seed(0)
    meta = {"arch": "small", "classes": list(dubai.CLASSES), "base": 4, "depth": 2, "encoder": "resnet18",
            "input_max": 255.0}
    model = unet.build_model("small", 6, base=4, depth=2)
    opt = torch.optim.Adam(model.parameters())
    torch.save(unet.checkpoint_state(model, opt, torch.Generator().manual_seed(0), meta), path)
    return path


@pytest.fixture(scope="module")
def seg_ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("segc") / "step-00000001.pt")


class TestSegmentationProbsContract(ExtractorContract):
    """The contract on 3-date RGB series items."""

    from satcore_timeseries.segmentation import SegmentationProbsExtractor as component

    params = {}  # noqa: RUF012 - set per test by the fixture

    @pytest.fixture(autouse=True)
    def _ckpt(self, seg_ckpt, monkeypatch):
        monkeypatch.setattr(type(self), "params", {"model": str(seg_ckpt)})

    def make_items(self):
        return make_class_items(self.n_items, kind="series", size=20)

    def build(self, tmp_path, seed=0, setup=True):
        """One torch thread: several threads on a busy CI machine make tiny models crawl."""
        from satcore.components import RunContext
        from satcore.testing.helpers import build_component

        ctx = RunContext(seed=seed, device="cpu", batch_size=8, threads=1, run_dir=tmp_path / "run",
                         spec_dir=tmp_path)
        return build_component(self.component_class(), self.make_params(tmp_path), base_dir=tmp_path,
                               setup=setup, context=ctx)


def test_probabilities_sum_to_one_and_confidence_bounds(seg_ckpt):
    from satcore_timeseries.segmentation import SegmentationProbsExtractor

    from satcore.components import Batch, RunContext

    ext = SegmentationProbsExtractor(SegmentationProbsExtractor.params_model.model_validate(
        {"model": str(seg_ckpt)}), context=RunContext(device="cpu", threads=1))
    ext.setup()
    items = make_class_items(2, kind="series", size=20)
    for o in ext.process(Batch(items, items, "seg")):
        s = o["series"]
        assert s.shape == (3, 7) and o["n_dates"] == 3
        np.testing.assert_allclose(s[:, :6].sum(1), 1.0, rtol=1e-5)
        assert (s[:, 6] >= s[:, :6].max(1) - 1e-6).all() and (s[:, 6] <= 1).all()  # mean max ≥ max mean


def test_missing_rgb_bands_is_an_item_error(seg_ckpt):
    from affine import Affine
    from satcore_timeseries.segmentation import SegmentationProbsExtractor

    from satcore.components import Batch, RunContext
    from satcore.data import Item, Raster
    from satcore.errors import ComponentError

    ext = SegmentationProbsExtractor(SegmentationProbsExtractor.params_model.model_validate(
        {"model": str(seg_ckpt), "bands": ["B04", "B03", "B02"]}),
        context=RunContext(device="cpu", threads=1))
    ext.setup()
    it = Item("x", [Raster(np.zeros((3, 8, 8), np.float32), transform=Affine.identity())],
              meta={"kind": "series"})
    with pytest.raises(ComponentError, match=r"not the RGB bands \['B04', 'B03', 'B02'\]"):
        ext.process(Batch([it], [it], "seg"))


def test_a_model_of_another_family_is_refused(tmp_path):
    from satcore_timeseries.segmentation import SegmentationProbsExtractor

    from satcore.components import RunContext
    from satcore.errors import SpecError
    from satcore.registry import Registry

    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    reg = Registry({"clipish": {"family": "open_clip", "path": str(ckpt)}})
    ext = SegmentationProbsExtractor(SegmentationProbsExtractor.params_model.model_validate(
        {"model": "clipish"}), context=RunContext(device="cpu", threads=1, registry=reg))
    with pytest.raises(SpecError, match="not a `satcore train segmentation` model"):
        ext.setup()
