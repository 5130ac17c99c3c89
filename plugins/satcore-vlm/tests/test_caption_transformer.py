"""``caption-transformer`` with tiny randomly initialised classifiers and tokenizers trained in memory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from satcore_vlm.caption_transformer import CaptionTransformerDetector, holdout
from satcore_vlm.testing import CORPUS, tiny_bert

from satcore.components import Batch
from satcore.data import Item
from satcore.testing import DetectorContract, build_component, make_change_items

SAME = ["a dense forest with a road", "a lake beside green fields", "houses along a river"]
NEW = ["new buildings on bare land", "a large parking lot", "construction site with cranes"]
TRAIN = {"epochs": 8, "learning_rate": 3e-3, "batch_size": 8, "max_length": 32}


def _captions(item: Item) -> dict[str, Any]:
    if item.item_id == "bad-item":
        return {}
    i = sum(map(ord, item.item_id)) % 3
    return {"captions": [SAME[i], NEW[i] if item.image_label else SAME[i]]}


class TestCaptionTransformerContract(DetectorContract):
    component = CaptionTransformerDetector

    model: ClassVar[Path | None] = None

    def make_params(self, tmp_path: Path) -> dict[str, Any]:
        # one model for the class, built once
        cls = type(self)
        if cls.model is None:
            cls.model = tiny_bert(tmp_path / "tiny-bert")
        return {"model": str(cls.model), **TRAIN, "epochs": 2}

    def make_inputs(self, items: Sequence[Item]) -> list[Any]:
        return [_captions(it) for it in items]


def _data(n: int, seed: int) -> tuple[list[list[str]], np.ndarray]:
    rng = np.random.default_rng(seed)
    pairs, y = [], []
    for _ in range(n):
        i, j = rng.integers(3), rng.integers(3)
        changed = int(rng.random() < 0.5)
        pairs.append([SAME[i], NEW[j] if changed else SAME[i]])
        y.append(changed)
    return pairs, np.asarray(y)


def _scores(comp: Any, pairs: list[list[str]]) -> np.ndarray:
    out = comp.process(Batch(make_change_items(len(pairs)), [{"captions": p} for p in pairs]))
    return np.asarray([d.score for d in out])


def test_fit_summary_accuracies_match_sklearn(tmp_path: Path) -> None:
    from sklearn.metrics import accuracy_score

    pairs, y = _data(40, 0)
    # 12 epochs: with the (now fixed) tiny vocabulary, 8 stop at 27 of 32 train pairs right
    params = {"model": str(tiny_bert(tmp_path / "m")), **TRAIN, "epochs": 12}
    comp = build_component(CaptionTransformerDetector, params, run_dir=tmp_path / "run", base_dir=tmp_path,
                           seed=3)
    summary = comp.fit(pairs, y)
    val = holdout(y, 0.2, 3)
    assert val.sum() == summary["n_validation"] == 8 and summary["n_train"] == 32
    pred = (_scores(comp, pairs) >= 0.5).astype(int)
    assert summary["train_accuracy"] == pytest.approx(accuracy_score(y[~val], pred[~val]))
    assert summary["validation_accuracy"] == pytest.approx(accuracy_score(y[val], pred[val]))
    assert summary["train_accuracy"] == 1.0  # separable captions: fine-tuning must learn them
    assert summary["loss_per_epoch"][-1] < summary["loss_per_epoch"][0]


def test_deterministic_with_seed_and_state_round_trip(tmp_path: Path) -> None:
    pairs, y = _data(24, 1)
    model = str(tiny_bert(tmp_path / "m"))
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        comp = build_component(CaptionTransformerDetector, {"model": model, **TRAIN, "epochs": 2},
                               run_dir=tmp_path / name, base_dir=tmp_path, seed=seed)
        comp.fit(pairs, y)
        runs.append((comp, _scores(comp, pairs)))
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])
    state = tmp_path / "state.zip"
    runs[0][0].save_state(state)
    import zipfile

    names = set(zipfile.ZipFile(state).namelist())
    assert {"model.safetensors", "config.json"} <= names and not any(n.endswith(".bin") for n in names)
    other = build_component(CaptionTransformerDetector, {"model": model, **TRAIN}, run_dir=tmp_path / "d",
                            base_dir=tmp_path)
    other.load_state(state)
    np.testing.assert_allclose(_scores(other, pairs), runs[0][1], rtol=1e-5, atol=1e-6)


def _roberta(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaConfig, RobertaForSequenceClassification, RobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS + SAME + NEW, trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")),
                                                      ("<s>", tok.token_to_id("<s>")))
    ft = RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                              cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    cfg = RobertaConfig(vocab_size=len(ft), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=2, max_position_embeddings=80, pad_token_id=ft.pad_token_id,
                        bos_token_id=ft.bos_token_id, eos_token_id=ft.eos_token_id)
    torch.manual_seed(0)
    RobertaForSequenceClassification(cfg).save_pretrained(folder)
    ft.save_pretrained(folder)
    return folder


def _xlnet(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, XLNetConfig, XLNetForSequenceClassification

    specials = ["<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(CORPUS + SAME + NEW, trainers.UnigramTrainer(
        vocab_size=150, special_tokens=specials, unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(
        single="$A <sep> <cls>", special_tokens=[("<sep>", tok.token_to_id("<sep>")),
                                                 ("<cls>", tok.token_to_id("<cls>"))])
    ft = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                 cls_token="<cls>", sep_token="<sep>", mask_token="<mask>",
                                 padding_side="left")
    cfg = XLNetConfig(vocab_size=len(ft), d_model=32, n_layer=1, n_head=2, d_inner=64,
                      pad_token_id=ft.pad_token_id)
    torch.manual_seed(0)
    XLNetForSequenceClassification(cfg).save_pretrained(folder)
    ft.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("make", [_roberta, _xlnet], ids=["roberta", "xlnet"])
def test_other_architectures_fit_and_round_trip(tmp_path: Path, make: Any) -> None:
    pairs, y = _data(16, 2)
    comp = build_component(CaptionTransformerDetector,
                           {"model": str(make(tmp_path / "m")), **TRAIN, "epochs": 1},
                           run_dir=tmp_path / "run", base_dir=tmp_path)
    summary = comp.fit(pairs, y)
    assert summary["architecture"] in ("roberta", "xlnet")
    state = tmp_path / "s.zip"
    comp.save_state(state)
    other = build_component(CaptionTransformerDetector, {"model": str(tmp_path / "m"), **TRAIN},
                            run_dir=tmp_path / "o", base_dir=tmp_path)
    other.load_state(state)
    np.testing.assert_allclose(_scores(other, pairs), _scores(comp, pairs), rtol=1e-5, atol=1e-6)


def test_captions_then_caption_transformer_through_run(tmp_path: Path, tiny_blip: Path,
                                                        pairs_dir: Path) -> None:
    """vlm-caption (tiny BLIP) over pairs → caption-transformer fitted by `satcore run`; state in fitted/."""
    import json

    from satcore.testing import run_pipeline

    model = tiny_bert(tmp_path / "bert")
    spec = {"source": {"type": "folder-pairs", "root": str(pairs_dir)},
            "steps": [{"id": "cap", "type": "vlm-caption", "model": str(tiny_blip), "max_new_tokens": 6},
                      {"id": "ct", "type": "caption-transformer", "input": "cap", "model": str(model),
                       **TRAIN, "epochs": 1, "validation_fraction": 0.0}],
            "execution": {"batch_size": 2, "device": "cpu"}}
    out = run_pipeline(spec, tmp_path)  # the run folder: tmp_path/run
    assert not out.errors
    fitted = out.manifest["fitted"]["ct"]
    assert fitted["items"] == 4 and fitted["n_train"] == 4 and fitted["validation_accuracy"] is None
    scores = np.asarray(out.table["ct.score"], dtype=float)
    labels = np.asarray(out.table["ct.label"], dtype=int)
    np.testing.assert_array_equal(labels, (scores >= 0.5).astype(int))
    truth = {"pair-0": 0, "pair-1": 1, "pair-2": 1, "pair-3": 1}
    acc = np.mean([int(lab) == truth[i] for i, lab in zip(out.table["item_id"], labels, strict=True)])
    assert fitted["train_accuracy"] == pytest.approx(acc)
    assert (tmp_path / "run" / "fitted" / "ct.zip").is_file()
    [(_, body)] = CaptionTransformerDetector.report_sections(tmp_path / "run", "ct", None)
    assert f"{fitted['train_accuracy']:.4f}" in body and "validation accuracy (Table 6)" in body
    assert json.dumps(out.metrics)  # the detection block is there for the step
