"""``vlm-caption``/``vlm-prompt`` with ``input: <generator step>``: they describe the generated images."""

from __future__ import annotations

import numpy as np
import pytest
from satcore_vlm.images import generated_images, input_images
from satcore_vlm.steps import VlmCaptioner, VlmPromptRecognizer

from satcore.components import Batch
from satcore.data import Raster
from satcore.errors import ComponentError
from satcore.testing import build_component, make_caption_items, make_text_items


def _eight_bit(array: np.ndarray, order: list[int]) -> np.ndarray:
    """The README's rule written out: the RGB bands, floats stretched from the 2nd to the 98th percentile."""
    x = array[order].astype(np.float32)
    lo, hi = np.percentile(x, [2, 98])
    return np.transpose((np.clip((x - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8), (1, 2, 0))


def _generated(seed: int) -> Raster:
    # an F-like output: float 0–255, bands named in another order than RGB (selection by name is checked)
    rng = np.random.default_rng(100 + seed)
    return Raster(rng.uniform(0, 255, (3, 32, 32)).astype(np.float32), band_names=("blue", "green", "red"))


def _own(r: Raster) -> np.ndarray:
    """An item's own image as the captioner sees it: uint8 as it is, else stretched (first three bands)."""
    if r.array.dtype == np.uint8:
        return np.transpose(r.array[:3], (1, 2, 0))
    return _eight_bit(r.array, [0, 1, 2])


def _spy(comp, seen: list[np.ndarray]) -> None:
    real = comp._gen.generate

    def generate(images, *a, **k):
        seen.extend(images)
        return real(images, *a, **k)

    comp._gen.generate = generate


def _direct(model_dir, images: list[np.ndarray], max_new_tokens: int) -> list[str]:
    """Captions from transformers directly (the reference), one image at a time."""
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    model = BlipForConditionalGeneration.from_pretrained(model_dir).eval()
    proc = BlipProcessor.from_pretrained(model_dir)
    out = []
    for a in images:
        ids = model.generate(**proc(images=[Image.fromarray(a)], return_tensors="pt"),
                             max_new_tokens=max_new_tokens, do_sample=False)
        out.append(proc.tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    return out


def test_generated_images_reads_rasters_and_arrays_only_from_a_generator_output():
    r = _generated(0)
    arr = np.zeros((3, 4, 5), np.float32)
    got = generated_images({"image": r, "images": [arr]})
    assert got is not None and [g[1] for g in got] == [("blue", "green", "red"), ()]
    assert got[0][0] is r.array and got[1][0] is arr  # `image` first, then `images` (the engine's file order)
    assert generated_images({"images": [np.ones((4, 5))]})[0][0].shape == (1, 4, 5)  # type: ignore[index]
    item = make_caption_items(1)[0]
    # not a generator's output: the source item, a classifier's output, a multi-input mapping
    for upstream in (item, {"labels": ["forest"]}, {"rgb": {"images": [r]}, "source": item}):
        assert generated_images(upstream) is None
        assert [a for a, _ in input_images(item, upstream)] == [im.array for im in item.images]
    with pytest.raises(ComponentError, match="step 'cap'.*Rasters or"):
        generated_images({"images": ["not an image"]}, "cap")


def test_caption_describes_the_input_generators_images(tiny_blip):
    items = make_caption_items(2)
    gens = [_generated(i) for i in range(2)]
    comp = build_component(VlmCaptioner, {"model": str(tiny_blip), "max_new_tokens": 6, "cache": False})
    seen: list[np.ndarray] = []
    _spy(comp, seen)
    out = comp.process(Batch(items, [{"images": [g]} for g in gens], "cap"))
    expected = [_eight_bit(g.array, [2, 1, 0]) for g in gens]  # red, green, blue by name
    assert len(seen) == 2 and all(np.array_equal(s, e) for s, e in zip(seen, expected, strict=True))
    own = [_own(it.images[0]) for it in items]
    assert not any(np.array_equal(s, o) for s, o in zip(seen, own, strict=True))
    assert [o["captions"] for o in out] == [[c] for c in _direct(tiny_blip, expected, 6)]

    seen.clear()  # no generator input (Batch of items only, or `input: source`): the items' own images
    comp.process(Batch(items))
    assert len(seen) == 2 and all(np.array_equal(s, o) for s, o in zip(seen, own, strict=True))


def test_items_without_images_are_captioned_from_their_generator(tiny_blip):
    items = make_text_items(2)
    comp = build_component(VlmCaptioner, {"model": str(tiny_blip), "max_new_tokens": 4, "cache": False})
    made = [{"image": _generated(i).array, "texts": ["x"]} for i in range(2)]  # a bare array: first 3 bands
    out = comp.process(Batch(items, made, "cap"))
    assert all(len(o["captions"]) == 1 and isinstance(o["captions"][0], str) for o in out)
    with pytest.raises(ComponentError, match="no image to describe"):
        comp.process(Batch(items[:1], [{"texts": ["only text"]}], "cap"))


def test_prompt_labels_the_input_generators_image(tiny_blip):
    items = make_caption_items(1)
    gen = _generated(0)
    comp = build_component(VlmPromptRecognizer, {
        "model": str(tiny_blip), "preset": None, "prompt": "Which of {labels}?",
        "vocabulary": ["forest", "river"], "max_new_tokens": 4, "cache": False})
    seen: list[np.ndarray] = []
    _spy(comp, seen)
    comp.process(Batch(items, [{"images": [gen]}], "rec"))
    assert len(seen) == 1 and np.array_equal(seen[0], _eight_bit(gen.array, [2, 1, 0]))
    with pytest.raises(ComponentError, match="has 2 images"):
        comp.process(Batch(items, [{"images": [gen, gen]}], "rec"))
