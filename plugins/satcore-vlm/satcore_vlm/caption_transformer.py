"""``caption-transformer``: change from a fine-tuned text classifier (thesis experiment 3, Tables 5–6).

A pair's two captions become one text, ``"before: <caption 1> after: <caption 2>"``, and a transformers
sequence classifier (BERT, DistilBERT, RoBERTa, XLNet by alias, or any ``save_pretrained`` folder) is
fine-tuned on the train split inside :meth:`CaptionTransformerDetector.fit` — a share of it held out for the
validation accuracy the thesis reports beside the train accuracy.

The fitted state is one zip file holding the ``save_pretrained`` output (safetensors weights, config,
tokenizer): unzipped, it loads with ``AutoModelForSequenceClassification.from_pretrained``. No pickle is
written or read.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from satcore.components import Batch, Detection, Detector, DetectorParams, Params
from satcore.errors import ComponentError, RunStopped

STATE_FORMAT = 1
STATE_INFO = "satcore-state.json"


class CaptionTransformerParams(DetectorParams):
    """Parameters of ``caption-transformer``."""

    model: str = Field(
        "bert-base-uncased", description="A text-classifier alias from registry.yaml (bert-base-uncased, "
        "distilbert-base-uncased, roberta-base, xlnet-base-cased) or a transformers model folder.")
    weights: str | None = Field(
        None, description="Explicit model folder for the alias (searched first); default: "
        "$SATCORE_MODELS/<alias>/, then the Hugging Face cache.")
    epochs: int = Field(3, ge=1, le=1000, description="Passes over the training texts.")
    learning_rate: float = Field(2e-5, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(16, ge=1, description="Texts per optimisation step (and per prediction batch).")
    max_length: int = Field(128, ge=8, le=4096, description="Longest tokenised text; longer ones are cut.")
    validation_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of the train split held out (seeded, per class) for the "
        "validation accuracy; 0 = train on all of it.")

    @field_validator("model", "weights")
    @classmethod
    def _spec_relative(cls, v: str | None, info: ValidationInfo) -> str | None:
        from satcore_vlm.steps import model_or_path

        return model_or_path(v, info)


def combined_text(pair: list[str]) -> str:
    """The single text a pair of captions becomes."""
    return f"before: {pair[0]} after: {pair[1]}"


def holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the validation items: ``fraction`` of each class (rounded), drawn with ``seed``.

    A class keeps at least one training item.
    """
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    if fraction <= 0:
        return mask
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(int(round(fraction * len(idx))), len(idx) - 1)
        if k > 0:
            mask[rng.permutation(idx)[:k]] = True
    return mask


class CaptionTransformerDetector(Detector):
    """Fine-tunes a transformers sequence classifier on "before: … after: …" caption pairs."""

    name: ClassVar[str] = "caption-transformer"
    params_model: ClassVar[type[Params]] = CaptionTransformerParams
    consumes: ClassVar[tuple[str, ...]] = ("captions",)
    fittable: ClassVar[bool] = True
    state_suffix: ClassVar[str] = ".zip"
    params: CaptionTransformerParams

    def setup(self) -> None:
        """Import torch/transformers and find the base model's folder (loaded when fitting)."""
        from satcore.errors import MissingDependencyError

        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("transformers", "caption-transformer",
                                         "pip install -c constraints.txt -e plugins/satcore-vlm") from exc
        found = self.context.resolve_model(self.params.model, self.params.weights).path
        if found is None:
            raise RunStopped(f"model {self.params.model!r}: no folder found; give a transformers folder "
                             "in `weights:` or `model:`")
        self._base = Path(found)
        if not self._base.is_dir():
            self._base = self._base.parent
        self._device = self.context.torch_device()
        self._model: Any = None
        self._tok: Any = None

    # ------------------------------------------------------------------ records
    def fit_records(self, batch: Batch) -> list[Any]:
        """The pair's two captions."""
        return [self._pair(item, inp) for item, inp in batch.with_inputs()]

    def _pair(self, item: Any, inp: Any) -> list[str]:
        caps = inp.get("captions") if isinstance(inp, dict) else None
        if caps is None or len(caps) != 2 or not all(isinstance(c, str) for c in caps):
            raise ComponentError(
                f"item {item.item_id!r}: caption-transformer needs two captions (before, after) from its "
                f"input step; got {caps!r:.120}", item_id=item.item_id, step=self.step_id)
        return [str(caps[0]), str(caps[1])]

    # ------------------------------------------------------------------ model
    def _load(self, folder: Path, fresh_head: bool) -> None:
        import torch
        import transformers as tf

        torch.manual_seed(self.context.seed)  # the new classification head starts from the run's seed
        kw: dict[str, Any] = {"num_labels": 2} if fresh_head else {}
        try:
            self._tok = tf.AutoTokenizer.from_pretrained(folder)
            self._model = tf.AutoModelForSequenceClassification.from_pretrained(folder, **kw)
        except (OSError, ValueError) as exc:
            raise RunStopped(f"{folder}: cannot load a text classifier and its tokenizer "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                             "it needs a transformers `save_pretrained` folder with a tokenizer") from exc
        self._model.to(self._device)

    def _encode(self, texts: list[str]) -> Any:
        return self._tok(texts, padding=True, truncation=True, max_length=self.params.max_length,
                         return_tensors="pt").to(self._device)

    def _probabilities(self, texts: list[str]) -> np.ndarray:
        import torch

        self._model.eval()
        out: list[np.ndarray] = []
        with torch.inference_mode():
            for k in range(0, len(texts), self.params.batch_size):
                logits = self._model(**self._encode(texts[k:k + self.params.batch_size])).logits
                out.append(torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    # ------------------------------------------------------------------ fitting
    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        """Fine-tune on the train pairs (a seeded share held out); report train and validation accuracy."""
        import torch

        p = self.params
        y = np.asarray(labels, dtype=int)
        texts = [combined_text(list(r)) for r in records]
        val = holdout(y, p.validation_fraction, self.context.seed)
        tr = np.flatnonzero(~val)
        self._load(self._base, fresh_head=True)
        opt = torch.optim.AdamW(self._model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
        rng = np.random.default_rng(self.context.seed)
        losses: list[float] = []
        for _epoch in range(p.epochs):
            self._model.train()
            total = 0.0
            order = rng.permutation(tr)
            for k in range(0, len(order), p.batch_size):
                idx = order[k:k + p.batch_size]
                enc = self._encode([texts[i] for i in idx])
                out = self._model(**enc, labels=torch.as_tensor(y[idx], device=self._device))
                opt.zero_grad()
                out.loss.backward()
                opt.step()
                total += float(out.loss.detach()) * len(idx)
            losses.append(total / max(len(tr), 1))
        pred = (self._probabilities(texts) >= 0.5).astype(int)
        summary: dict[str, Any] = {
            "train_accuracy": float((pred[tr] == y[tr]).mean()) if len(tr) else None,
            "validation_accuracy": float((pred[val] == y[val]).mean()) if val.any() else None,
            "n_train": len(tr), "n_validation": int(val.sum()), "epochs": p.epochs,
            "loss_per_epoch": [round(v, 6) for v in losses],
            "model": p.model, "architecture": str(getattr(self._model.config, "model_type", "")),
        }
        return summary

    @classmethod
    def report_sections(cls, run_dir: Path, step_id: str, results: Any) -> list[tuple[str, str]]:
        """The train/validation accuracy table (thesis Tables 5–6) from manifest.json."""
        from satcore_vlm.report import accuracy_section

        return accuracy_section(run_dir, step_id)

    def save_state(self, path: Path) -> None:
        """The fine-tuned model and tokenizer (``save_pretrained``, safetensors) in one zip file."""
        from satcore.io import atomic_path

        with tempfile.TemporaryDirectory(prefix="satcore-ct-") as d:
            self._model.save_pretrained(d)
            self._tok.save_pretrained(d)
            Path(d, STATE_INFO).write_text(json.dumps({"format": STATE_FORMAT, "detector": self.name,
                                                       "model": self.params.model}), encoding="utf-8")
            with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(Path(d).iterdir()):
                    z.write(f, f.name)

    def load_state(self, path: Path) -> None:
        """Unpack the zip written by :meth:`save_state` and load the fine-tuned classifier from it."""
        # unpacked only while loading: the weights are in memory afterwards
        with tempfile.TemporaryDirectory(prefix="satcore-ct-") as d:
            folder = Path(d)
            try:
                with zipfile.ZipFile(path) as z:
                    if any(Path(n).name != n for n in z.namelist()):  # flat by construction: never elsewhere
                        raise zipfile.BadZipFile("nested paths")
                    z.extractall(folder)
                info = json.loads((folder / STATE_INFO).read_text(encoding="utf-8"))
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise RunStopped(f"{path}: not a caption-transformer state ({exc}); rerun with "
                                 "--overwrite") from exc
            if info.get("format") != STATE_FORMAT or info.get("detector") != self.name:
                raise RunStopped(f"{path}: not a caption-transformer state of format {STATE_FORMAT}; rerun "
                                 "with --overwrite")
            self._load(folder, fresh_head=False)

    # ------------------------------------------------------------------ prediction
    def process(self, batch: Batch) -> list[Detection]:
        """P(change) per pair; label = P ≥ 0.5."""
        if self._model is None:
            raise RunStopped(f"step {self.step_id!r}: caption-transformer was not fitted (it needs a train "
                             "split)")
        pairs = [self._pair(item, inp) for item, inp in batch.with_inputs()]
        probs = self._probabilities([combined_text(p) for p in pairs])
        return [Detection(score=float(v), label=int(v >= 0.5), threshold=0.5) for v in probs]
