"""``segment-anything-point`` with a tiny random Segment Anything (image size 64), fully offline."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from satcore.components import Batch, RunContext
from satcore.data import Item, Raster
from satcore.testing import ExtractorContract
from satcore.testing.data import make_class_items

torch = pytest.importorskip("torch")
tf = pytest.importorskip("transformers")


def write_tiny_sam(folder):
    """A random SAM with image size 64 and tiny vision / prompt / mask-decoder configs, plus its processor."""
    vc = tf.SamVisionConfig(hidden_size=16, output_channels=8, num_hidden_layers=2, num_attention_heads=2,
                            image_size=64, patch_size=8, window_size=4, global_attn_indexes=[1], mlp_dim=32,
                            num_pos_feats=4, initializer_range=0.02)
    pc = tf.SamPromptEncoderConfig(hidden_size=8, image_size=64, patch_size=8, mask_input_channels=4)
    mc = tf.SamMaskDecoderConfig(hidden_size=8, mlp_dim=16, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=8)
    cfg = tf.SamConfig(vision_config=vc.to_dict(), prompt_encoder_config=pc.to_dict(),
                       mask_decoder_config=mc.to_dict(), initializer_range=0.02)
    torch.manual_seed(0)
    model = tf.SamModel(cfg).eval()
    with torch.no_grad():  # SAM's initialisation is near zero: spread the weights so outputs vary
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    model.save_pretrained(folder)
    ip = tf.SamImageProcessor(size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
                              mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16})
    tf.SamProcessor(image_processor=ip).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory):
    return write_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny-sam")


def _extractor(folder, **params):
    from satcore_timeseries.sam import SamPointExtractor

    ext = SamPointExtractor(SamPointExtractor.params_model.model_validate({"model": str(folder), **params}),
                            context=RunContext(device="cpu", threads=1))
    ext.setup()
    return ext


def _windows(n=3, size=24, seed=0):
    rng = np.random.default_rng(seed)
    return [Raster(rng.integers(0, 256, (3, size, size)).astype(np.uint8), transform=Affine.identity())
            for _ in range(n)]


def test_iou_pred_and_mask_score_equal_a_direct_sam_call(tiny_sam):
    ext = _extractor(tiny_sam)
    wins = _windows()
    (o,) = ext.process(Batch([Item("p", wins, meta={"kind": "series"})], [None], "sam"))
    assert o["series_names"] == ["sam_iou_pred", "sam_mask_score"] and o["series"].shape == (3, 2)
    model = tf.SamModel.from_pretrained(tiny_sam).eval()
    proc = tf.SamProcessor.from_pretrained(tiny_sam)
    for row, r in zip(o["series"], wins, strict=True):
        img = r.array.transpose(1, 2, 0)
        inputs = proc(images=img, input_points=[[[12.5, 12.5]]], return_tensors="pt")  # the centre pixel
        with torch.no_grad():
            out = model(**inputs, multimask_output=True)
        iou = out.iou_scores[0, 0].numpy()
        assert iou.shape == (3,)
        assert row[0] == pytest.approx(float(iou.max()), rel=1e-5)
        masks = proc.post_process_masks(out.pred_masks, inputs["original_sizes"],
                                        inputs["reshaped_input_sizes"], binarize=False)
        logits = masks[0][0, int(iou.argmax())].numpy()
        assert logits.shape == (24, 24)
        inside = logits > 0
        want = (1 / (1 + np.exp(-logits[inside]))).mean() if inside.any() else 0.0
        assert row[1] == pytest.approx(float(want), rel=1e-5)
    assert np.ptp(o["series"][:, 0]) > 1e-4  # the dates differ


def test_nodata_prompt_pixel_is_nan(tiny_sam):
    ext = _extractor(tiny_sam)
    a = np.random.default_rng(2).uniform(0, 255, (3, 24, 24)).astype(np.float32)
    a[:, 12, 12] = np.nan
    (o,) = ext.process(Batch([Item("p", [Raster(a, transform=Affine.identity())], meta={"kind": "series"})],
                             [None], "sam"))
    assert np.isnan(o["series"]).all()


def test_missing_weights_exit_1_naming_alias_places_and_fix(tmp_path, monkeypatch):
    """No sam-vit-base weights anywhere: `satcore run` stops in set-up with exit 1 and says how to fix it."""
    from satcore.cli import cli
    from satcore.registry import clear_registry_cache

    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("SATCORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SATCORE_REGISTRY", raising=False)
    clear_registry_cache()
    from rasterio.crs import CRS

    from satcore.data import write_geotiff

    series = tmp_path / "series"
    series.mkdir()
    like = Raster(np.zeros((3, 16, 16), np.uint8), crs=CRS.from_epsg(32633),
                  transform=Affine(10.0, 0, 500000.0, 0, -10.0, 5100000.0))
    for d in (1, 2):
        write_geotiff(series / f"s_2020010{d}.tif", np.full((3, 16, 16), 40 * d, np.uint8), like=like)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""version: 1
source: {{type: geotiff-series, root: {series}, window: 8}}
steps:
  - {{id: sam, type: segment-anything-point}}
output: {{dir: {tmp_path / 'run'}, report: false}}
""")
    r = CliRunner().invoke(cli, ["run", str(spec)], standalone_mode=False)
    from satcore.errors import SatcoreError

    err = r.exception
    code = err.exit_code if isinstance(err, SatcoreError) else r.exit_code
    text = r.output + str(err)
    assert code == 1, text
    assert "'sam-vit-base'" in text
    assert str(tmp_path / "models" / "sam-vit-base") in text  # $SATCORE_MODELS/<alias>/
    assert str(tmp_path / "hf") in text and "facebook/sam-vit-base" in text  # the Hugging Face cache
    assert "hf download facebook/sam-vit-base" in text  # how to supply them
    clear_registry_cache()


def test_the_alias_finds_weights_in_satcore_models(tiny_sam, tmp_path, monkeypatch):
    import shutil

    from satcore.registry import clear_registry_cache

    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "models"))
    clear_registry_cache()
    shutil.copytree(tiny_sam, tmp_path / "models" / "sam-vit-base")
    ext = _extractor("sam-vit-base")
    (rec,) = ext.models_used()
    assert rec["alias"] == "sam-vit-base" and rec["source"] == "satcore-models"
    assert rec["licence"] == "Apache-2.0"
    clear_registry_cache()


class TestSamPointContract(ExtractorContract):
    """The extractor contract on 3-date series items, with the tiny random SAM."""

    from satcore_timeseries.sam import SamPointExtractor as component

    params = {}  # noqa: RUF012 - set per test by the fixture

    @pytest.fixture(autouse=True)
    def _tiny(self, tiny_sam, monkeypatch):
        monkeypatch.setattr(type(self), "params", {"model": str(tiny_sam)})

    def make_items(self):
        return make_class_items(self.n_items, kind="series", size=24)

    def build(self, tmp_path, seed=0, setup=True):
        """One torch thread: several threads on a busy CI machine make tiny models crawl."""
        from satcore.components import RunContext
        from satcore.testing.helpers import build_component

        ctx = RunContext(seed=seed, device="cpu", batch_size=8, threads=1, run_dir=tmp_path / "run",
                         spec_dir=tmp_path)
        return build_component(self.component_class(), self.make_params(tmp_path), base_dir=tmp_path,
                               setup=setup, context=ctx)
