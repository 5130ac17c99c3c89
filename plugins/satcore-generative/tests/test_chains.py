"""The example chains end to end with tiny random models, offline; ``satcore validate`` on each example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from click.testing import CliRunner
from satcore_generative.bands import ESA_BANDS

from satcore.cli import cli
from satcore.data import write_geotiff

pytest.importorskip("satcore_vlm")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CHAINS = sorted(EXAMPLES.glob("chain-*.yaml"))
FAST_T2I = {"steps": 2, "guidance": 3.0, "height": 32, "width": 32}


@pytest.mark.parametrize("path", CHAINS, ids=lambda p: p.stem)
def test_example_validates(path):
    r = CliRunner().invoke(cli, ["validate", str(path)])
    assert r.exit_code == 0, r.output
    assert "valid" in r.output


def _tiny(spec: dict, tmp_path, tiny_sd, tiny_ckpt, tiny_blip) -> dict:
    """The example with tiny models, absolute data paths and a temporary output folder."""
    for s in spec["steps"]:
        if s["type"] == "text-to-image":
            s.update(model=str(tiny_sd), **FAST_T2I)
        elif s["type"] in ("rgb-to-multispectral", "multispectral-to-rgb"):
            s.update(model=str(tiny_ckpt), window=16, overlap=8)
        elif s["type"] == "vlm-caption":
            s.update(model=str(tiny_blip), max_new_tokens=5, cache=False)
    src = spec["source"]
    key = "path" if "path" in src else "root"
    if not Path(src[key]).is_absolute():
        src[key] = str((EXAMPLES / src[key]).resolve())
    spec["output"] = {"dir": str(tmp_path / "run"), "report": False}
    return spec


def _load(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def test_caption_to_rgb_to_multispectral(run_pipeline, tmp_path, tiny_sd, tiny_ckpt, tiny_blip):
    out = run_pipeline(_tiny(_load("chain-caption-rgb-ms.yaml"), tmp_path, tiny_sd, tiny_ckpt, tiny_blip))
    assert out.errors == []
    t = out.table.set_index("item_id")
    assert sorted(t.index) == ["farmland", "river"]
    for item in t.index:
        with rasterio.open(out.output_dir / t.loc[item, "rgb.path"]) as r:
            rgb = r.read()
        with rasterio.open(out.output_dir / t.loc[item, "s2.path"]) as s:
            assert s.count == 13 and s.descriptions == ESA_BANDS and s.shape == rgb.shape[1:] == (32, 32)
    assert t.loc["river", "rgb.prompt"] == "a satellite image of a river through a forest"


def test_rgb_to_caption_and_multispectral(run_pipeline, tmp_path, tiny_sd, tiny_ckpt, tiny_blip):
    root = tmp_path / "rgb"
    rng = np.random.default_rng(1)
    for cls in ("aGrass", "bField"):
        write_geotiff(root / cls / f"{cls}_1.tif", rng.integers(0, 256, (3, 40, 40)).astype(np.uint8))
    spec = _load("chain-rgb-caption-ms.yaml")
    spec["source"]["root"] = str(root)
    out = run_pipeline(_tiny(spec, tmp_path, tiny_sd, tiny_ckpt, tiny_blip))
    assert out.errors == []
    t = out.table.set_index("item_id")
    assert sorted(t.index) == ["aGrass/aGrass_1", "bField/bField_1"]
    for item in t.index:
        assert isinstance(t.loc[item, "caption.captions"][0], str)
        with rasterio.open(out.output_dir / t.loc[item, "s2.path"]) as s:
            assert s.count == 13 and s.shape == (40, 40)


def _eight_bit(array: np.ndarray, order: list[int]) -> np.ndarray:
    """satcore-vlm's 8-bit rule (its README), written out: the RGB bands, stretched from the 2nd to the 98th
    percentile, as (H, W, 3) uint8."""
    x = array[order].astype(np.float32)
    lo, hi = np.percentile(x, [2, 98])
    return np.transpose((np.clip((x - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8), (1, 2, 0))


def _blip_direct(model_dir, image: np.ndarray, max_new_tokens: int) -> str:
    """The tiny captioner run with transformers directly on one 8-bit image (the reference)."""
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
    proc = BlipProcessor.from_pretrained(model_dir)
    ids = model.generate(**proc(images=[Image.fromarray(image)], return_tensors="pt"),
                         max_new_tokens=max_new_tokens, do_sample=False)
    return str(proc.tokenizer.decode(ids[0], skip_special_tokens=True).strip())


def test_multispectral_to_rgb_and_caption(run_pipeline, tmp_path, tiny_sd, tiny_ckpt, tiny_blip, monkeypatch):
    from satcore_vlm.backend import Generator

    seen: list[np.ndarray] = []  # every image the captioner's model was given
    real = Generator.generate

    def spy(self, images, *a, **k):
        seen.extend(images)
        return real(self, images, *a, **k)

    monkeypatch.setattr(Generator, "generate", spy)
    spec = _load("chain-ms-rgb-caption.yaml")
    assert spec["steps"][1]["input"] == "rgb"  # the caption reads F's output, not the scene
    out = run_pipeline(_tiny(spec, tmp_path, tiny_sd, tiny_ckpt, tiny_blip))
    assert out.errors == []
    t = out.table.set_index("item_id")
    assert sorted(t.index) == ["Farmland/Farmland_1", "Mixed/Mixed_1"]
    src = EXAMPLES / "data" / "eurosat-ms-layout" / "Mixed" / "Mixed_1.tif"
    with rasterio.open(out.output_dir / t.loc["Mixed/Mixed_1", "rgb.path"]) as g, rasterio.open(src) as a:
        assert g.count == 3 and g.descriptions == ("red", "green", "blue")
        assert g.transform == a.transform and g.crs == a.crs
    assert len(seen) == 2
    for item in t.index:
        path = out.output_dir / "generated" / item / "rgb.tif"
        assert t.loc[item, "rgb.path"] == f"generated/{item}/rgb.tif"
        with rasterio.open(path) as g:
            generated = _eight_bit(g.read(), [0, 1, 2])  # red, green, blue
        with rasterio.open(EXAMPLES / "data" / "eurosat-ms-layout" / f"{item}.tif") as a:
            true_colour = _eight_bit(a.read(), [3, 2, 1])  # B04, B03, B02 in the EuroSAT MS file order
        # the captioner was fed F's RGB, not the scene's true colour
        assert any(np.array_equal(s, generated) for s in seen)
        assert not any(np.array_equal(s, true_colour) for s in seen)
        assert t.loc[item, "caption.captions"][0] == _blip_direct(tiny_blip, generated, 5)
