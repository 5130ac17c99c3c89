"""``image_quality``: FID, KID and Inception Score from per-item image features supplied by a plugin.

These scores compare feature distributions of real and generated images; the features come from a network
(Inception-v3 pool3, 2048-D, and its class probabilities for IS), which the core does not ship. A plugin
that has one passes each item's vectors to :func:`image_quality_record`; without them every value is
``null`` with a reason. Definitions:

- ``fid`` (Heusel et al. 2017): ``|μ_r - μ_g|² + Tr(C_r + C_g - 2 (C_r C_g)^½)``, covariances with
  ``ddof = 1``, the square root by ``scipy.linalg.sqrtm`` (its imaginary part dropped; a singular product
  retried with ``1e-6`` added to both diagonals, as pytorch-fid does).
- ``kid_mean``/``kid_std`` (Bińkowski et al. 2018): unbiased MMD² with the kernel ``(xᵀy / d + 1)³`` on
  ``kid_subsets`` random subsets of ``kid_subset_size`` real and generated vectors (fewer when the split
  has fewer), mean and standard deviation (``ddof = 0``) over subsets; the subsets are drawn with
  ``seed`` from the vectors sorted by item id, so item order does not matter.
- ``inception_score`` (Salimans et al. 2016): ``exp(mean_x KL(p(y|x) ‖ p(y)))`` on each of ``is_splits``
  parts of the generated items (sorted by item id), mean over the parts.
- ``clip_score`` (Hessel et al. 2021, as torchmetrics' ``CLIPScore``): the mean over items of each item's
  ``100 · max(cos(image, text), 0)`` between the generated image and its caption or prompt, given per item
  by the plugin (``clip_items``: how many).

These equal torchmetrics' ``FrechetInceptionDistance``, ``KernelInceptionDistance`` and ``InceptionScore``
on the same features (``plugins/satcore-generative/tests/test_quality.py`` checks it).

Memory: the vectors are kept until :meth:`ImageQualityBlock.result` (KID needs the vectors themselves):
8 KB per item for 2048 float32 features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from satcore.evaluate.blocks.base import ExactSum, Record, _Seen, num, put, seq

NEEDS = ("needs image features from a plugin (e.g. Inception-v3 pool3 vectors, as torch-fidelity or "
         "pytorch-fid compute them) for {what}")


def image_quality_record(truth: Any, prediction: Any, *, probs: Any = None,
                         clip_score: float | None = None) -> Record | None:
    """One item's image-quality record.

    Args:
        truth: the feature vector of the real (target) image, or ``None``.
        prediction: the feature vector of the generated image, or ``None``.
        probs: optional class probabilities of the generated image (for the Inception Score).
        clip_score: optional CLIPScore of the generated image against its caption or prompt.

    Returns:
        ``{"real": [...], "fake": [...], "probs": [...], "clip_score": x}`` with what was given (vectors as
        float lists; an empty vector counts as not given), or ``None`` when nothing is given.
    """
    rec: Record = {}
    for key, val in (("real", truth), ("fake", prediction), ("probs", probs)):
        if val is not None and np.size(val):
            rec[key] = [float(v) for v in np.asarray(val, dtype=np.float64).ravel()]
    if clip_score is not None:
        rec["clip_score"] = float(clip_score)
    return rec or None


def frechet_distance(mu1: np.ndarray, c1: np.ndarray, mu2: np.ndarray, c2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians (the FID formula)."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean = linalg.sqrtm(c1 @ c2)
    if not np.all(np.isfinite(covmean)):
        off = np.eye(c1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((c1 + off) @ (c2 + off))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2 * np.trace(covmean))


def kid(real: np.ndarray, fake: np.ndarray, subsets: int, subset_size: int,
        seed: int) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased polynomial-kernel MMD² over random subsets."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    vals = np.empty(subsets)
    for s in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        vals[s] = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                   - 2 * kxy.mean())
    return float(vals.mean()), float(vals.std())


def inception_score(probs: np.ndarray, splits: int) -> float:
    """``exp(E_x KL(p(y|x) ‖ p(y)))`` per split, mean over splits (zero probabilities contribute 0)."""
    scores = []
    for part in np.array_split(probs, splits):
        py = part.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(py)), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores))


class ImageQualityBlock:
    """Accumulates image-quality records into the ``image_quality`` block (see the module docstring).

    Settings:
        kid_subsets: number of KID subsets (default 100).
        kid_subset_size: vectors per subset (default 1000, capped at the split's size).
        is_splits: Inception Score splits (default 10).
        seed: KID subset draws (default 0).
    """

    name: ClassVar[str] = "image_quality"
    item_record = staticmethod(image_quality_record)

    def __init__(self, *, kid_subsets: int = 100, kid_subset_size: int = 1000, is_splits: int = 10,
                 seed: int = 0, **settings: Any) -> None:
        self._seen = _Seen()
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.is_splits = is_splits
        self.seed = seed
        self.vecs: dict[str, dict[str, np.ndarray]] = {"real": {}, "fake": {}, "probs": {}}
        self.clip_sum = ExactSum()
        self.clip_items = 0

    def add(self, item_id: str, record: Mapping[str, Any]) -> None:
        """Fold in one item's record."""
        self._seen.check(self.name, item_id)
        for key, store in self.vecs.items():
            v = seq(record.get(key))
            if v:
                store[item_id] = np.asarray(v, dtype=np.float32)
        if (clip := num(record.get("clip_score"))) is not None:
            self.clip_sum.add(clip)
            self.clip_items += 1

    def _stack(self, key: str) -> tuple[np.ndarray | None, str | None]:
        store = self.vecs[key]
        if not store:
            return None, None
        dims = {v.size for v in store.values()}
        if len(dims) > 1:
            return None, f"{key} feature vectors differ in length ({sorted(dims)})"
        return np.stack([store[k] for k in sorted(store)]).astype(np.float64), None

    def result(self) -> dict[str, Any]:
        """The ``image_quality`` block."""
        out: dict[str, Any] = {"items": len(self._seen), "real": len(self.vecs["real"]),
                               "generated": len(self.vecs["fake"])}
        real, why_r = self._stack("real")
        fake, why_f = self._stack("fake")
        why = why_r or why_f
        if why is None and (real is None or fake is None):
            why = NEEDS.format(what="real and generated images" if real is None and fake is None
                               else "the real images" if real is None else "the generated images")
        if why is None and real is not None and fake is not None and real.shape[1] != fake.shape[1]:
            why = f"real and generated feature vectors differ in length ({real.shape[1]}, {fake.shape[1]})"
        if why is None and real is not None and fake is not None and min(len(real), len(fake)) < 2:
            why = "fewer than 2 real or generated feature vectors"
        if why is None and real is not None and fake is not None:
            d = real.shape[1]
            fid = frechet_distance(real.mean(0), np.cov(real, rowvar=False, ddof=1).reshape(d, d),
                                   fake.mean(0), np.cov(fake, rowvar=False, ddof=1).reshape(d, d))
            put(out, "fid", fid)
            km, ks = kid(real, fake, self.kid_subsets, self.kid_subset_size, self.seed)
            put(out, "kid_mean", km)
            put(out, "kid_std", ks)
        else:
            for k in ("fid", "kid_mean", "kid_std"):
                put(out, k, None, why)
        probs, why_p = self._stack("probs")
        if probs is None:
            put(out, "inception_score", None, why_p or NEEDS.format(
                what="class probabilities of the generated images (the Inception Score)"))
        elif len(probs) < self.is_splits:
            put(out, "inception_score", None,
                f"{len(probs)} generated items, fewer than is_splits = {self.is_splits}")
        else:
            put(out, "inception_score", inception_score(probs, self.is_splits))
        if self.clip_items:
            out["clip_items"] = self.clip_items
            put(out, "clip_score", self.clip_sum.value / self.clip_items)
        return out
