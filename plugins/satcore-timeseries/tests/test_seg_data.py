"""The Dubai mask colours, the segmentation scores and the four losses, against hand-made examples."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from satcore_timeseries import dubai

# a 2x3 mask: building, land, road / vegetation, water, black (no class)
RGB_MASK = np.array([[(60, 16, 152), (132, 41, 246), (110, 193, 228)],
                     [(254, 221, 58), (226, 169, 41), (0, 0, 0)]], dtype=np.uint8)
WANT = np.array([[0, 1, 2], [3, 4, dubai.IGNORE]], dtype=np.uint8)


def test_palette_png_is_converted_before_decoding(tmp_path):
    """A palette (P) PNG whose palette order differs from the class order decodes by colour, not index."""
    pal_img = Image.fromarray(RGB_MASK).quantize(colors=8)  # palette PNG, indices in the quantiser's order
    assert pal_img.mode == "P"
    pal_img.save(tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "P"
        assert not np.array_equal(np.asarray(im), WANT)  # the raw palette indices are not the classes
        np.testing.assert_array_equal(dubai.mask_to_classes(im), WANT)
    Image.fromarray(RGB_MASK).save(tmp_path / "rgb.png")
    with Image.open(tmp_path / "rgb.png") as im:
        np.testing.assert_array_equal(dubai.mask_to_classes(im), WANT)


def test_unlabeled_grey_is_a_class_and_classes_json_colours_are_not():
    m = np.array([[(155, 155, 155), (0x50, 0xE3, 0xC2)]], dtype=np.uint8)  # #50E3C2 is classes.json's
    np.testing.assert_array_equal(dubai.mask_to_classes(m), [[5, dubai.IGNORE]])


def test_scores_against_a_hand_made_example_and_sklearn():
    from sklearn.metrics import jaccard_score

    truth = np.array([[0, 0, 1, 1], [2, 2, 2, dubai.IGNORE]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 3]])
    cm = dubai.confusion(truth, pred)
    s = dubai.scores(cm)
    # by hand over the 7 scored pixels: correct 0,1,1,2,2 → 5/7
    assert s["pixel_accuracy"] == pytest.approx(5 / 7)
    # class 0: TP 1, FP 1 (the 2 predicted as 0), FN 1 → 1/3; class 1: TP 2, FP 1 → 2/3; class 2: 2/3
    assert s["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert s["iou"][3:] == [None, None, None]  # class 3 was only predicted on an ignored pixel
    assert s["miou"] == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    keep = truth != dubai.IGNORE
    assert s["miou"] == pytest.approx(jaccard_score(truth[keep], pred[keep], average="macro"))
    assert s["pixels"] == 7


def test_majority_baseline():
    lab = np.array([[1, 1, 1], [0, 4, dubai.IGNORE]], dtype=np.uint8)
    img = np.zeros((2, 3, 3), np.uint8)
    test = np.array([[1, 0], [0, 0]], dtype=np.uint8)
    b = dubai.majority_baseline([(img, lab)], [(img[:2, :2], test)])
    assert b["class"] == "land"
    assert b["pixel_accuracy"] == pytest.approx(0.25)
    assert b["miou"] == pytest.approx((0 + 0.25) / 2)  # building IoU 0, land 1/4


torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: several threads on a busy machine make small models crawl."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _example():
    logits = torch.tensor([[[[2.0, 0.5, -1.0]], [[0.0, 1.5, 0.3]], [[-1.0, 0.2, 2.0]]]])  # (1, 3, 1, 3)
    y = torch.tensor([[[0, 1, 255]]])
    return logits, y


def test_cross_entropy_by_hand():
    from satcore_timeseries.unet import make_loss

    logits, y = _example()
    z = logits[0, :, 0].numpy()  # (3 classes, 3 pixels)
    p = np.exp(z) / np.exp(z).sum(0)
    want = -(np.log(p[0, 0]) + np.log(p[1, 1])) / 2  # the ignored third pixel does not count
    assert float(make_loss("ce")(logits, y)) == pytest.approx(want, rel=1e-6)


def _soft(logits):
    z = logits[0, :, 0, :2].numpy().astype(np.float64)  # the two scored pixels
    return np.exp(z) / np.exp(z).sum(0), np.eye(3)[[0, 1]].T  # probs (3, 2), one-hot (3, 2)


def test_dice_and_jaccard_by_hand():
    from satcore_timeseries.unet import make_loss

    logits, y = _example()
    p, t = _soft(logits)
    inter, card = (p * t).sum(1), (p + t).sum(1)
    present = t.sum(1) > 0  # smp counts only classes present in the truth (absent: loss 0, still averaged)
    dice = np.where(present, 1 - 2 * inter / card, 0).mean()
    jac = np.where(present, 1 - inter / (card - inter), 0).mean()
    assert float(make_loss("dice")(logits, y)) == pytest.approx(dice, rel=1e-5)
    assert float(make_loss("jaccard")(logits, y)) == pytest.approx(jac, rel=1e-5)


def test_focal_by_hand():
    """smp's multiclass focal loss: a one-vs-rest sigmoid focal loss (γ = 2) per class, averaged
    over the classes."""
    from satcore_timeseries.unet import make_loss

    logits, y = _example()
    z = logits[0, :, 0, :2].numpy().astype(np.float64)
    t = np.eye(3)[[0, 1]].T
    s = 1 / (1 + np.exp(-z))
    bce = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    pt = np.exp(-bce)
    want = ((1 - pt) ** 2 * bce).mean(1).mean()
    assert float(make_loss("focal")(logits, y)) == pytest.approx(want, rel=1e-5)


def test_unknown_loss_and_arch():
    from satcore_timeseries.unet import build_model, make_loss

    with pytest.raises(ValueError, match="loss must be one of"):
        make_loss("l2")
    with pytest.raises(ValueError, match="arch must be one of"):
        build_model("vit")


def test_smp_unet_checkpoint_round_trip_and_padding(tmp_path):
    """arch smp (encoder_weights=None): a checkpoint rebuilds the same network; odd sizes are padded."""
    from satcore_timeseries import unet

    torch.manual_seed(0)
    meta = {"arch": "smp", "classes": list(dubai.CLASSES), "encoder": "resnet18", "input_max": 255.0}
    net = unet.build_model("smp", 6, encoder="resnet18").eval()
    opt = torch.optim.Adam(net.parameters())
    torch.save(unet.checkpoint_state(net, opt, torch.Generator(), meta), tmp_path / "c.pt")
    back, meta2 = unet.load_checkpoint(tmp_path / "c.pt")
    assert meta2 == meta and unet.stride_of("smp") == 32
    x = np.random.default_rng(0).random((3, 40, 50)).astype(np.float32)
    p = unet.predict_probs(back, x, "cpu", 32)
    assert p.shape == (6, 40, 50)
    np.testing.assert_allclose(p.sum(0), 1.0, rtol=1e-5)
    with torch.no_grad():  # the padded prediction's top-left equals the network on the padded input
        pad = torch.nn.functional.pad(torch.from_numpy(x)[None], (0, 14, 0, 24), mode="reflect")
        want = torch.softmax(net(pad), 1)[0, :, :40, :50].numpy()
    np.testing.assert_allclose(p, want, atol=1e-5)
