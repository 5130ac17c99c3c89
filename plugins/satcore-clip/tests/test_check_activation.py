"""The activation check: both variants classify labelled images zero-shot; numbers recomputed apart."""

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import accuracy_score


def _scenes(root, n_per_class=3):
    rng = np.random.default_rng(0)
    colours = {"forest": (20, 120, 30), "lake": (30, 60, 200), "desert": (220, 190, 120)}
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True)
        for k in range(n_per_class):
            img = np.clip(np.array(rgb) + rng.normal(0, 25, (48, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{k}.png")
    (root / "notes.txt").write_text("not a class")
    return sorted(colours)


def test_twin_names():
    from satcore_clip.check_activation import twin_architecture

    assert twin_architecture("ViT-B-32") == "ViT-B-32-quickgelu"
    assert twin_architecture("ViT-L-14-quickgelu") == "ViT-L-14"


def test_both_activations_compared_on_labelled_folders(tiny_env, tmp_path, make_extractor, capsys):
    from satcore_clip.check_activation import compare, main

    classes = _scenes(tmp_path / "scenes")
    res = compare("tiny-a", tmp_path / "scenes", device="cpu")
    assert res["classes"] == classes and res["images"] == 9 and res["configured"] == "tiny-clip"
    gelu, quick = res["variants"]
    assert (gelu["architecture"], quick["architecture"]) == ("tiny-clip", "tiny-clip-quickgelu")
    files = sorted((tmp_path / "scenes").glob("*/*.png"))
    truth = [classes.index(f.parent.name) for f in files]
    for row in (gelu, quick):
        assert row["accuracy"] == pytest.approx(accuracy_score(truth, row["predictions"]))
    # the reference for the configured variant: the extractor the pipeline uses, images one by one
    ext = make_extractor(classes=classes)
    from satcore.components import Batch
    from satcore.data import Item, read_raster

    ref = [int(ext.process(Batch([Item("x", [read_raster(f)])]))[0]["probabilities"][0].argmax())
           for f in files]
    assert gelu["predictions"] == ref
    # QuickGELU is a different network on the same weights: some probabilities move
    assert main(["tiny-a", "--images", str(tmp_path / "scenes"), "--device", "cpu", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["variants"][0]["mean_true_probability"] != out["variants"][1]["mean_true_probability"]
    gap = out["variants"][0]["accuracy"] - out["variants"][1]["accuracy"]
    expected = None if abs(gap) < 0.05 else out["variants"][0 if gap > 0 else 1]["architecture"]
    assert out["verdict"] == expected


@pytest.mark.parametrize(("acc", "verdict", "says"), [
    ((0.90, 0.60), "ViT-B-32-quickgelu", "the configured architecture ViT-B-32-quickgelu fits these weights"),
    ((0.50, 0.80), "ViT-B-32", "these weights fit ViT-B-32 better than the configured ViT-B-32-quickgelu"),
    ((0.70, 0.72), None, "no clear winner"),
])
def test_verdict_wording(acc, verdict, says):
    from satcore_clip.check_activation import _report

    rows = [{"architecture": a, "accuracy": x, "mean_true_probability": 0.5}
            for a, x in zip(("ViT-B-32-quickgelu", "ViT-B-32"), acc, strict=True)]
    res = {"model": "remoteclip-vit-b32", "images": 20, "classes": ["a", "b"], "variants": rows,
           "verdict": verdict, "configured": "ViT-B-32-quickgelu"}
    assert says in _report(res)


def test_bad_folders_and_missing_weights_exit_cleanly(tiny_env, tmp_path, capsys):
    from satcore_clip.check_activation import main

    (tmp_path / "one" / "forest").mkdir(parents=True)
    assert main(["tiny-a", "--images", str(tmp_path / "one")]) == 2
    assert "needs at least two class folders" in capsys.readouterr().err
    assert main(["tiny-a", "--images", str(tmp_path / "nowhere")]) == 2
    _scenes(tmp_path / "scenes", 1)
    assert main(["clip-vit-b32", "--images", str(tmp_path / "scenes")]) == 1
    assert "weights for model 'clip-vit-b32' were not found" in capsys.readouterr().err
