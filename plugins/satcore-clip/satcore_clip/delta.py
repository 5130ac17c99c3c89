"""``probability-delta``: Δ = distance between the class probabilities of the two dates, with a threshold.

The threshold is fixed or optimised on the train split with the core's sort-based
:func:`satcore.evaluate.threshold.threshold_curve` (one sort over all distinct Δ, not a grid).
The fitted state (``fitted/<step>.json``) keeps the chosen threshold, the best threshold for each
of f1/accuracy/recall/precision,
and the metric-vs-threshold curve (downsampled for plotting).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from satcore.components import Batch, Detection, Detector, DetectorParams, Params
from satcore.errors import ComponentError
from satcore.evaluate.threshold import OBJECTIVES, threshold_curve

Objective = Literal["f1", "accuracy", "recall", "precision"]


class OptimiseThreshold(Params):
    """``threshold: {optimise: f1}``: choose the threshold maximising a metric on the train split.

    ``{optimise: [f1, accuracy, recall, precision]}`` fits one threshold per metric (the thesis's "Threshold
    Optimization" rows): the first decides the step's ``label``; each one's threshold and image metrics go
    to metrics.json under ``image.by_objective``.
    """

    optimise: Objective | list[Objective] = Field(
        "f1",
        description="The metric the threshold maximises on the train split (ties → the highest threshold); "
        "a list fits one threshold per metric, the first deciding `label`, all reported under "
        "`image.by_objective` in metrics.json.",
    )

    @field_validator("optimise")
    @classmethod
    def _distinct(cls, v: Any) -> Any:
        if isinstance(v, list) and (not v or len(set(v)) != len(v)):
            raise ValueError(f"optimise: give one or more distinct metrics, got {v}")
        return v

    @property
    def objectives(self) -> list[str]:
        """The metrics optimised, the deciding one first."""
        return list(self.optimise) if isinstance(self.optimise, list) else [self.optimise]

    @property
    def primary(self) -> str:
        """The metric whose threshold decides ``label``."""
        return self.objectives[0]


class ProbabilityDeltaParams(DetectorParams):
    """Parameters of ``probability-delta``."""

    distance: Literal["l1", "l2", "cosine"] = Field(
        "l1", description="l1 = Σ|p1 − p2| (the thesis), l2 = ‖p1 − p2‖, cosine = 1 − cos(p1, p2)."
    )
    threshold: float | OptimiseThreshold = Field(
        default_factory=OptimiseThreshold,
        description="A fixed Δ threshold, or `{optimise: f1|accuracy|recall|"
        "precision}` fitted once on the train split. Change when Δ > threshold.",
    )
    explain: int = Field(3, ge=0, le=32, description="Classes listed in the `rose` / `fell` columns.")
    curve_points: int = Field(
        400, ge=10, description="Points kept of the metric-vs-threshold curve for plotting."
    )


def delta(p1: np.ndarray, p2: np.ndarray, distance: str) -> float:
    """The change score between two probability vectors."""
    d = p2.astype(np.float64) - p1.astype(np.float64)
    if distance == "l1":
        return float(np.abs(d).sum())
    if distance == "l2":
        return float(np.sqrt((d * d).sum()))
    a, b = p1.astype(np.float64), p2.astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(1.0 - a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def _fmt(value: float | None) -> str:
    return "undefined (0/0)" if value is None else f"{value:.4f}"


def _downsample(n: int, k: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


class ProbabilityDeltaDetector(Detector):
    """Change score Δ between the class probabilities of two dates; change when Δ exceeds a threshold."""

    name = "probability-delta"
    params_model = ProbabilityDeltaParams
    consumes: ClassVar[tuple[str, ...]] = ("probabilities",)
    params: ProbabilityDeltaParams

    @property  # type: ignore[override]
    def fittable(self) -> bool:  # type: ignore[override]
        """Only an optimised threshold is fitted; a fixed one needs no labels and no fit pass."""
        return isinstance(self.params.threshold, OptimiseThreshold)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        thr = self.params.threshold
        self.threshold: float | None = float(thr) if isinstance(thr, (int, float)) else None
        self.state: dict[str, Any] = {}
        #: objective → fitted threshold, when several are optimised (``{optimise: [f1, …]}``)
        self.by_objective: dict[str, float] = {}

    # ------------------------------------------------------------------ scoring
    def _pair(self, item_id: str, inp: Any) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(inp["probabilities"] if isinstance(inp, dict) else inp)
        if p.ndim != 2 or p.shape[0] < 2:
            raise ComponentError(
                f"probability-delta needs probabilities of two images (before, after); got shape {p.shape}",
                item_id,
                self.step_id,
            )
        return p[0], p[-1]

    def fit_records(self, batch: Batch) -> list[Any]:
        """Δ of each training item."""
        return [delta(*self._pair(it.item_id, inp), self.params.distance) for it, inp in batch.with_inputs()]

    def fit(self, records: list[Any], labels: np.ndarray, groups: np.ndarray | None = None) -> dict[str, Any]:
        """One sort over the train Δ: every candidate threshold's confusion counts, best per objective."""
        scores = np.asarray(records, dtype=np.float64)
        y = np.asarray(labels).astype(int)
        curve = threshold_curve(scores, y)
        best: dict[str, dict[str, Any]] = {}
        for obj in OBJECTIVES:
            i = curve.best_index(obj)
            value = float(curve.metric(obj, undefined=np.nan)[i])
            best[obj] = {"threshold": float(curve.thresholds[i]), "value": None if np.isnan(value) else value}
            if np.isnan(value):  # e.g. recall with no changed train item, precision with nothing predicted
                best[obj]["value_reason"] = (
                    f"{obj} is 0/0 at this threshold ({int(y.sum())} of {len(y)} train items changed); "
                    "scored as 0 when optimising, as scikit-learn's zero_division=0")
        fixed = self.params.threshold
        if isinstance(fixed, OptimiseThreshold):
            self.threshold = best[fixed.primary]["threshold"]
            objective: str | None = fixed.primary
        else:
            self.threshold = float(fixed)
            objective = None
        keep = _downsample(len(curve.thresholds), self.params.curve_points)
        always_change = bool(self.threshold < scores.min())
        by_objective = (
            {o: best[o]["threshold"] for o in fixed.objectives}
            if isinstance(fixed, OptimiseThreshold) and isinstance(fixed.optimise, list) else {})
        self.by_objective = by_objective
        self.state = {
            "version": 1,
            "by_objective": by_objective,
            "distance": self.params.distance,
            "threshold": self.threshold,
            "objective": objective,
            "best": best,
            "n_train": int(len(scores)),
            "n_changed": int(y.sum()),
            "distinct_scores": int(len(curve.thresholds) - 1),
            "always_change": always_change,
            "curve": {
                "threshold": curve.thresholds[keep].tolist(),
                **{m: curve.metric(m)[keep].tolist() for m in OBJECTIVES},
            },
        }
        if always_change:
            self.context.logger.warning(
                "step %s: the fitted threshold %.4g lies below every train Δ, i.e. 'always change' — compare "
                "with "
                "the always-change baseline in metrics.json",
                self.step_id,
                self.threshold,
            )
        return {
            "threshold": self.threshold,
            "objective": objective,
            "always_change": always_change,
            **{f"best_{k}": v for k, v in best.items()},
        }

    def save_state(self, path: Path) -> None:
        """``fitted/<step>.json``: threshold, best per objective, downsampled curve."""
        from satcore.io import write_json

        write_json(path, self.state)

    def load_state(self, path: Path) -> None:
        """Reuse a fitted threshold (``--resume``)."""
        self.state = json.loads(path.read_text())
        self.threshold = float(self.state["threshold"])
        self.by_objective = {k: float(v) for k, v in self.state.get("by_objective", {}).items()}

    def process(self, batch: Batch) -> list[Detection]:
        """Δ, the decision, and which classes rose or fell most."""
        if self.threshold is None:
            raise ComponentError("probability-delta has no threshold: it was neither fixed nor fitted")
        k = self.params.explain
        out = []
        for it, inp in batch.with_inputs():
            p1, p2 = self._pair(it.item_id, inp)
            score = delta(p1, p2, self.params.distance)
            d = p2.astype(np.float64) - p1.astype(np.float64)
            classes = inp.get("classes") if isinstance(inp, dict) else None
            names = list(classes) if classes else [f"class {i}" for i in range(len(d))]
            order = np.argsort(-d, kind="stable")
            rose = [f"{names[i]} +{d[i]:.3f}" for i in order[:k] if d[i] > 0]
            fell = [f"{names[i]} {d[i]:.3f}" for i in order[::-1][:k] if d[i] < 0]
            out.append(
                Detection(
                    score=score,
                    label=int(score > self.threshold),
                    threshold=self.threshold,
                    by_objective={o: (int(score > t), t) for o, t in self.by_objective.items()},
                    extra={
                        "rose": "; ".join(rose),
                        "fell": "; ".join(fell),
                        "class_delta": [round(float(x), 6) for x in d],
                    },
                )
            )
        return out

    # ------------------------------------------------------------------ report
    @classmethod
    def report_sections(cls, run_dir: Path, step_id: str, results_df: Any) -> list[tuple[str, str]]:
        """Δ histograms with the threshold, per-item class-change bars, metric-vs-threshold curve."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from satcore.plots import fig_to_html

        run_dir = Path(run_dir)
        sc, thr_col = f"{step_id}.score", f"{step_id}.threshold"
        if sc not in results_df.columns:
            return []
        df = results_df[results_df[sc].notna()]
        state_p = run_dir / "fitted" / f"{step_id}.json"
        state = json.loads(state_p.read_text()) if state_p.exists() else {}
        thr = state.get("threshold")
        if thr is None and thr_col in df.columns and df[thr_col].notna().any():
            thr = float(df[thr_col].dropna().iloc[0])
        parts: list[str] = []
        # 1. Δ histogram per truth class (log scale) with the threshold
        fig, ax = plt.subplots(figsize=(6, 3.2))
        bins = np.linspace(0, max(float(df[sc].max()), 1e-9), 30)
        if "truth.change" in df.columns and df["truth.change"].notna().any():
            for lab, colour, name in ((0, "tab:blue", "no change"), (1, "tab:red", "change")):
                v = df.loc[df["truth.change"] == lab, sc]
                if len(v):
                    ax.hist(v, bins=bins, alpha=0.6, color=colour, label=f"{name} ({len(v)})")
        else:
            ax.hist(df[sc], bins=bins, color="tab:gray", label="all items")
        if thr is not None:
            ax.axvline(thr, color="k", ls="--", label=f"threshold {thr:.3g}")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)  # single items stay visible on the log scale
        ax.set_xlabel(f"Δ ({state.get('distance', 'l1')})")
        ax.set_ylabel("items (log)")
        ax.legend(fontsize=8)
        parts.append(fig_to_html(fig, f"{step_id} delta histogram"))
        # 2. per-item class-change bars
        dcol = f"{step_id}.class_delta"
        names = _class_names(run_dir, step_id)
        if dcol in df.columns:
            shown = df.sort_values(sc, ascending=False).head(6)
            n = len(shown)
            if n:
                fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3), squeeze=False)
                for ax, (_, row) in zip(axes[0], shown.iterrows(), strict=False):
                    d = np.asarray(row[dcol], dtype=float)
                    idx = np.argsort(-np.abs(d))[:6][::-1]
                    lab = [names[i] if names and i < len(names) else f"class {i}" for i in idx]
                    ax.barh(lab, d[idx], color=["tab:green" if x > 0 else "tab:red" for x in d[idx]])
                    ax.axvline(0, color="k", lw=0.5)
                    ax.set_title(f"{row['item_id']}\nΔ={row[sc]:.3f}", fontsize=8)
                    ax.tick_params(labelsize=7)
                fig.tight_layout()
                parts.append(fig_to_html(fig, f"{step_id} class changes per item"))
        # 3. metric vs threshold
        curve = state.get("curve")
        if curve:
            fig, ax = plt.subplots(figsize=(6, 3.2))
            for m in OBJECTIVES:
                ax.plot(curve["threshold"], curve[m], label=m, drawstyle="steps-post")
            if thr is not None:
                ax.axvline(thr, color="k", ls="--", label=f"chosen {thr:.3g}")
            ax.set_xlabel("threshold on Δ")
            ax.set_ylabel("train metric")
            ax.legend(fontsize=8)
            parts.append(fig_to_html(fig, f"{step_id} metric vs threshold"))
            rows = "".join(
                f"<tr><td>{html.escape(k)}</td><td>{v['threshold']:.6g}</td><td>{_fmt(v['value'])}</td></tr>"
                for k, v in state.get("best", {}).items()
            )
            note = (
                " <b>The chosen threshold is below every train Δ: on the train split this is the "
                "always-change rule.</b>"
                if state.get("always_change")
                else ""
            )
            parts.append(
                f"<p>Fitted on {state.get('n_train')} train items ({state.get('n_changed')} changed; "
                f"{state.get('distinct_scores')} distinct Δ, one sort).{note}</p><table><tr><th>objective"
                f"</th><th>best threshold</th><th>train value</th></tr>{rows}</table>"
            )
        return [(f"Probability delta: {step_id}", "".join(parts))]


def _class_names(run_dir: Path, step_id: str) -> list[str] | None:
    """The class names of the clip-zeroshot step feeding ``step_id``, from the manifest's resolved spec."""
    try:
        man = json.loads((run_dir / "manifest.json").read_text())
        steps = {s["id"]: s for s in man["spec"]["steps"]}
        src = steps[steps[step_id]["input"]]
        from satcore_clip.extractor import resolve_classes

        base = Path(man["spec_path"]).parent if man.get("spec_path") else None
        return resolve_classes(src.get("classes", "satellite-32"), base)
    except Exception:
        return None
