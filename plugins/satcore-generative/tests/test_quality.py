"""``image-quality``: features through a tiny network give torchmetrics' FID, KID and IS in the core block;
CLIPScore equals its formula on a tiny CLIP; missing Inception weights say where to put them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from satcore_generative.quality import ImageQualityExtractor, to_uint8_rgb
from satcore_generative.testing import write_tiny_clip

from satcore.components import Batch, RunContext
from satcore.data import Item, Raster
from satcore.errors import MissingWeightsError
from satcore.evaluate.blocks import ImageQualityBlock, image_quality_record
from satcore.registry import Registry

N = 12


class TinyInception(torch.nn.Module):
    """uint8 images → (16 features, 10 logits), any size (adaptive pooling)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.feat = torch.nn.Linear(48, 16)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        f = self.feat(torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 4).flatten(1))
        return f, self.head(torch.tanh(f))


class Head(torch.nn.Module):
    def __init__(self, net, k):
        super().__init__()
        self.net, self.k, self.num_features = net, k, 16 if k == 0 else 10

    def forward(self, x):
        return self.net(x)[self.k]


class TinyQuality(ImageQualityExtractor):
    net = TinyInception()

    def build_network(self, weights):
        return self.net


def _data():
    rng = np.random.default_rng(5)
    items, ups = [], []
    for i in range(N):
        real = rng.integers(0, 256, (3, 24, 24)).astype(np.uint8)
        fake = np.clip(real * 0.7 + rng.normal(0, 30, real.shape), 0, 255).astype(np.float32)
        target = Raster(real, band_names=("red", "green", "blue"))
        items.append(Item(f"i{i:02d}", [], targets={"target": target}, text=f"scene {i}"))
        ups.append({"images": [Raster(fake, band_names=("red", "green", "blue"))], "prompt": f"prompt {i}"})
    return items, ups


def _extractor(tmp_path, cls=TinyQuality, **params):
    dummy = tmp_path / "inception.pth"
    dummy.write_bytes(b"tiny")
    e = cls(cls.params_model(**{"inception": str(dummy), **params}), RunContext(device="cpu"), step_id="q")
    e.setup()
    return e


@pytest.mark.filterwarnings("ignore:Metric `(Kernel Inception Distance|InceptionScore)` will save")
@pytest.mark.filterwarnings("ignore:std:UserWarning")  # torchmetrics' KID std of 1 subset
def test_block_equals_torchmetrics_fid_kid_is(tmp_path):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    items, ups = _data()
    out = _extractor(tmp_path).process(Batch(items, ups))
    block = ImageQualityBlock(kid_subsets=1, kid_subset_size=N, is_splits=1)
    e = TinyQuality.__new__(TinyQuality)
    for item, o in zip(items, out, strict=True):
        assert o["features"].shape == (16,) and o["real_features"].shape == (16,)
        assert o["probabilities"].sum() == pytest.approx(1.0)
        block.add(item.item_id, image_quality_record(e.metric_truth("image_quality", item, o),
                                                     e.metric_prediction("image_quality", o),
                                                     **e.metric_settings("image_quality", o)))
    res = block.result()
    real = torch.from_numpy(np.stack([it.targets["target"].array for it in items]))
    fake = torch.from_numpy(np.stack([to_uint8_rgb(u["images"][0]) for u in ups]))
    fid = FrechetInceptionDistance(feature=Head(TinyQuality.net, 0))
    kid = KernelInceptionDistance(feature=Head(TinyQuality.net, 0), subsets=1, subset_size=N)
    for m in (fid, kid):
        m.update(real, real=True)
        m.update(fake, real=False)
    isc = InceptionScore(feature=Head(TinyQuality.net, 1), splits=1)
    isc.update(fake)
    assert res["fid"] == pytest.approx(float(fid.compute()), rel=1e-3)
    assert res["kid_mean"] == pytest.approx(float(kid.compute()[0]), rel=1e-3, abs=1e-6)
    assert res["inception_score"] == pytest.approx(float(isc.compute()[0]), rel=1e-4)
    assert res["fid"] > 0.01  # a degraded copy is not the real distribution


def test_clip_score_is_its_formula(tmp_path):
    from transformers import CLIPModel, CLIPProcessor

    folder = write_tiny_clip(tmp_path / "clip")
    items, ups = _data()
    ext = _extractor(tmp_path, clip_model=str(folder), inception_scores=False)
    out = ext.process(Batch(items[:3], ups[:3]))
    model, proc = CLIPModel.from_pretrained(folder), CLIPProcessor.from_pretrained(folder)
    for o, u in zip(out, ups[:3], strict=True):
        assert "features" not in o
        img = to_uint8_rgb(u["images"][0])
        inp = proc(text=[u["prompt"]], images=[img.transpose(1, 2, 0)], return_tensors="pt", padding=True)
        with torch.no_grad():
            i = model.get_image_features(pixel_values=inp["pixel_values"])
            t = model.get_text_features(input_ids=inp["input_ids"], attention_mask=inp["attention_mask"])
        i = i if isinstance(i, torch.Tensor) else i.pooler_output
        t = t if isinstance(t, torch.Tensor) else t.pooler_output
        want = 100 * max(float(torch.nn.functional.cosine_similarity(i, t)), 0.0)
        assert o["clip_score"] == pytest.approx(want, rel=1e-4, abs=1e-4)
    block = ImageQualityBlock()
    e = TinyQuality.__new__(TinyQuality)
    for item, o in zip(items[:3], out, strict=True):
        block.add(item.item_id, image_quality_record(e.metric_truth("image_quality", item, o),
                                                     e.metric_prediction("image_quality", o),
                                                     **e.metric_settings("image_quality", o)))
    res = block.result()
    assert res["clip_items"] == 3
    assert res["clip_score"] == pytest.approx(np.mean([o["clip_score"] for o in out]))
    assert res["fid"] is None and res["fid_reason"]


def test_missing_inception_weights_say_where(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    e = ImageQualityExtractor(ImageQualityExtractor.params_model(),
                              RunContext(device="cpu", registry=Registry.load()), step_id="q")
    with pytest.raises(MissingWeightsError) as exc:
        e.setup()
    msg = str(exc.value)
    assert "'inception-v3-fid'" in msg and "weights-inception-2015-12-05-6726825d.pth" in msg
    assert "torch-fidelity/releases" in msg and exc.value.exit_code == 1
    # a file pre-seeded in torch's hub cache is found
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "weights-inception-2015-12-05-6726825d.pth").write_bytes(b"x")
    import satcore.plugins as sp

    found = Registry.load(locate=sp.locate_weights).resolve("inception-v3-fid")
    assert found.path == hub / "weights-inception-2015-12-05-6726825d.pth"
