"""BERTScore and CLIPScore of generated captions from local model folders, through torchmetrics.

``vlm-caption`` computes them per item when its ``bertscore_model:`` / ``clipscore_model:`` name folders
(``save_pretrained`` output); the core's ``captions`` block averages them (docs/metrics.md). Nothing is
downloaded: a folder that is missing stops the run in set-up (exit 1) naming the setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from satcore.errors import MissingWeightsError


def check_model_folder(path: Path, setting: str, step_id: str, what: str) -> Path:
    """``path`` when it holds a ``save_pretrained`` model (a ``config.json``); else MissingWeightsError.

    Args:
        path: the folder the step names.
        setting: the step's parameter (``bertscore_model`` or ``clipscore_model``).
        step_id: the step, for the message.
        what: the kind of model, for the message (``"a BERT-family model"``).
    """
    if (path / "config.json").is_file():
        return path
    raise MissingWeightsError(
        f"{step_id}.{setting}", [str(path)],
        f"`{setting}:` of step {step_id!r} must be a local folder with {what} saved by transformers' "
        "save_pretrained (config.json, weights, tokenizer/processor), e.g. copied from a machine with "
        "internet access; nothing is downloaded. Or remove the setting: the captions block then reports "
        f"{'bertscore_f1' if 'bert' in setting else 'clipscore'} as null with a reason.")


class BertScorer:
    """BERTScore F1 of captions against their references (torchmetrics' ``bert_score``, model loaded once).

    No idf weighting, no baseline rescaling; the hidden states of layer ``num_layers`` (default: the last).
    With several references the F1 is the best over them (the bert-score package's rule).
    """

    def __init__(self, folder: Path, device: Any, num_layers: int | None = None,
                 max_length: int = 512) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval().to(device)
        self.device = device
        self.num_layers = num_layers
        # padding to more positions than the model has would fail inside it
        positions = int(getattr(self.model.config, "max_position_embeddings", max_length))
        self.max_length = min(max_length, positions)

    def f1(self, captions: Sequence[str], references: Sequence[Sequence[str]]) -> list[float]:
        """One F1 per caption: the best over its references.

        One ``bert_score`` call per (caption, reference): torchmetrics 1.9 sorts predictions and targets by
        length with an unstable sort, so in a batched call a pair can be scored against another pair's
        embeddings when lengths tie (Lightning-AI/torchmetrics#2728); one pair per call cannot be misaligned.
        """
        from torchmetrics.functional.text.bert import bert_score

        out = []
        for cap, refs in zip(captions, references, strict=True):
            best = None
            for ref in refs:
                f1 = bert_score([cap], [ref], model=self.model, user_tokenizer=self.tokenizer,
                                num_layers=self.num_layers, device=self.device,
                                max_length=self.max_length)["f1"]
                v = float(f1.reshape(-1)[0]) if hasattr(f1, "reshape") else float(f1[0])
                best = v if best is None else max(best, v)
            out.append(float("nan") if best is None else best)
        return out


class ClipScorer:
    """CLIPScore of each (image, caption) pair as torchmetrics defines it: 100 · max(cos(image, text), 0).

    Computed with transformers directly: torchmetrics 1.9's ``clip_score`` takes a local folder only through
    a callable and then fails on transformers 5, whose ``get_image_features`` returns an output object
    instead of a tensor. The embeddings are CLIPModel's projected, L2-normalised ``image_embeds`` and
    ``text_embeds``; captions longer than the text encoder's positions are truncated.
    """

    def __init__(self, folder: Path, device: Any) -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.model = CLIPModel.from_pretrained(folder, local_files_only=True).eval().to(device)  # type: ignore[no-untyped-call]
        self.processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
        self.device = device
        self.max_length = int(self.model.config.text_config.max_position_embeddings)

    def scores(self, images: Sequence[np.ndarray], captions: Sequence[str]) -> list[float]:
        """One score per pair; ``images`` are (H, W, 3) uint8 RGB."""
        import torch

        if not captions:
            return []
        inputs = self.processor(text=list(captions), images=[np.asarray(i) for i in images],
                                return_tensors="pt", padding=True, truncation=True,
                                max_length=self.max_length)
        with torch.no_grad():
            out = self.model(**{k: v.to(self.device) for k, v in inputs.items()})
        cos = (out.image_embeds * out.text_embeds).sum(dim=-1)  # both unit vectors: the cosine
        return [float(v) for v in torch.clamp(100 * cos, min=0).cpu().tolist()]
