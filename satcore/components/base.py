"""What every component shares: params, lifecycle, batches and the run context."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from satcore.data import Item
    from satcore.registry import Registry, ResolvedModel

#: Names a component may list in ``consumes`` / ``produces``; ``satcore validate`` checks the chain with them.
DATA_KINDS = {
    "pair": "two co-registered images (before, after)",
    "series": "a time series of images at one location",
    "scene": "a single image",
    "mask": "a pixel change mask (ground truth)",
    "text": "text per item (captions, prompts)",
    "probabilities": "per-image class probabilities",
    "embedding": "per-image embedding vectors",
    "features": "a per-item feature vector",
    "segmentation": "per-pixel class probabilities",
    "change": "a change score/label (and maybe a change map)",
    "captions": "generated captions",
    "labels": "recognised labels with scores",
    "images": "generated images",
}


class Params(BaseModel):
    """Base for component parameters: unknown keys are errors, every field documented."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # `threshold: .nan` is a typo


@dataclass
class RunContext:
    """What a component may know about the run it is part of.

    The engine builds one per run and passes it to every component; tests build their own
    (:func:`satcore.testing.build_component`). Model weights are found through the injected ``registry``
    (:meth:`resolve_model`), so a test or a Dask worker can hand a component exactly the aliases it should
    see.
    """

    seed: int = 0
    device: str = "auto"
    batch_size: int = 32
    loader_workers: int = 0
    threads: int | None = None
    processes: int = 1
    run_dir: Path | None = None
    spec_dir: Path | None = None
    #: The model-alias registry :meth:`resolve_model` asks; ``None``: the process's
    #: :func:`satcore.registry.get_registry` (root, plugin and user registries).
    registry: Registry | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("satcore"))
    #: CPU seconds the loader threads spend reading one item while the model steps compute, measured by the
    #: engine's loading probe before the first batch: 0.0 when items are read serially (nothing runs beside
    #: the model), ``None`` when not measured (short runs, no loader threads).
    reading_s_per_item: float | None = None

    def resolve_model(self, alias: str, path: str | None = None) -> ResolvedModel:
        """Find the weights of a model alias (or an explicit checkpoint path) by the one search order.

        Asks the injected :attr:`registry`, else the process's registry. :mod:`satcore.registry` sits below
        the components in the import layers (it reads registry files and imports no plugin code), so this
        function-level import makes no cycle; it is deferred only to keep PyYAML out of ``import
        satcore.components``.

        Raises:
            MissingWeightsError: no weights found; the message lists where it looked and how to supply them.
        """
        if self.registry is not None:
            return self.registry.resolve(alias, explicit_path=path)
        from satcore.registry import get_registry

        return get_registry().resolve(alias, explicit_path=path)

    def torch_device(self) -> str:
        """``auto`` → ``cuda`` when available, else ``cpu`` (imports torch; call from ``setup()`` only)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def cpu_threads(self) -> int:
        """Threads a component should compute with on the CPU (e.g. ``torch.set_num_threads``).

        ``execution.threads`` when set; otherwise this process's share of the cores (``processes`` run side by
        side: the Dask executor's local workers) minus the ``loader_workers`` threads that decode ahead of the
        model, at least 1. Whether that beats the library's default depends on the model:
        :class:`satcore.components.tuning.ThreadTuner` measures both on the run's first batches.
        """
        if self.threads is not None:
            return self.threads
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, cores // max(1, self.processes) - self.loader_workers)

    def state_path(self, step_id: str, suffix: str) -> Path:
        """Where a step keeps fitted state inside the run folder."""
        if self.run_dir is None:
            raise RuntimeError("no run folder: fitted state cannot be saved")
        d = self.run_dir / "fitted"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{step_id}{suffix}"


class Batch(Sequence["Item"]):
    """Items processed together, with what each one's ``input:`` produced upstream.

    ``inputs[i]`` is the output of the step named by ``input:`` for ``items[i]``, or the item itself when the
    input is the source. An item's result must never depend on which other items share its batch.
    """

    def __init__(self, items: Sequence[Item], inputs: Sequence[Any] | None = None, step_id: str = "") -> None:
        self.items = list(items)
        self.inputs = list(inputs) if inputs is not None else list(self.items)
        self.step_id = step_id
        if len(self.inputs) != len(self.items):
            raise ValueError("one input per item")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        return self.items[i]

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def with_inputs(self) -> Iterator[tuple[Item, Any]]:
        """``(item, upstream output)`` pairs."""
        return zip(self.items, self.inputs, strict=True)


def scalar_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Keep what fits a table cell: scalars, strings and short lists of them."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and len(v) <= 64 and all(
            isinstance(x, (bool, int, float, str, np.generic)) for x in v
        ):
            out[k] = [x.item() if isinstance(x, np.generic) else x for x in v]
    return out


class Component:
    """Base of every component kind.

    Subclasses set ``name`` (kebab-case, the YAML ``type:``), ``params_model``, ``consumes`` and ``produces``,
    import heavy libraries and load weights in :meth:`setup`, and process batches.

    The extension points a component may use are all declared here or on its kind's base class (never looked
    up with ``getattr``): the class attributes ``name``, ``params_model``, ``params_version``, ``consumes``,
    ``produces``; the class methods :meth:`upgrade_params` and :meth:`report_sections`; the methods
    :meth:`setup`, :meth:`teardown`, :meth:`models_used`, :meth:`columns`; for detectors also ``fittable``
    with the four fitting methods (:class:`~satcore.components.Detector`).
    :func:`satcore.components.checks.check_extension_points` checks a class against them.
    """

    kind: ClassVar[str] = "component"
    #: kebab-case, unique among installed components: the ``type:`` of a pipeline step (or source).
    name: ClassVar[str] = ""
    #: the pydantic model of the step's params (``extra="forbid"``, every field with a ``description``).
    params_model: ClassVar[type[Params]] = Params
    #: bump when the params change shape, and teach :meth:`upgrade_params` the old shape.
    params_version: ClassVar[int] = 1
    #: the data kinds (:data:`DATA_KINDS`) this step needs from its ``input:``; ``satcore validate`` checks
    #: that the input produces one of them (empty: anything, e.g. the items themselves).
    consumes: ClassVar[tuple[str, ...]] = ()
    #: the data kinds (:data:`DATA_KINDS`) this component's outputs provide to later steps.
    produces: ClassVar[tuple[str, ...]] = ()
    #: Filled in by the plugin manager: the plugin and distribution that registered the class.
    plugin_name: ClassVar[str | None] = None
    distribution: ClassVar[str | None] = None

    def __init__(self, params: Params | None = None, context: RunContext | None = None,
                 step_id: str | None = None) -> None:
        self.params = params if params is not None else self.params_model()
        self.context = context or RunContext()
        self.step_id = step_id or self.name

    @classmethod
    def upgrade_params(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Turn params written for an older ``params_version`` into the current shape (default: as is)."""
        return data

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Import heavy libraries and load weights; raise MissingWeights/MissingDependency errors here."""

    def teardown(self) -> None:  # noqa: B027 - optional hook
        """Release what setup() took."""

    def models_used(self) -> list[dict[str, Any]]:
        """Model aliases this instance loaded, for ``manifest.json`` (alias, source, sha256, licence)."""
        return []

    def columns(self, output: Any) -> dict[str, Any]:
        """Table cells for ``results.parquet`` from one item's output (prefixed with the step id later)."""
        if isinstance(output, dict):
            return scalar_columns(output)
        return {}

    @classmethod
    def report_sections(cls, run_dir: Path, step_id: str, results: Any) -> list[tuple[str, str]]:
        """Extra sections for ``report.html`` about one step of a finished run (default: none).

        Called once per step of this type when the report is built, possibly in another process long after
        the run (``satcore report``), so it reads what it needs from the run folder, never from an
        instance. A section that fails is shown as "not available" and does not break the report.
        :func:`satcore.plots.fig_to_html` turns a matplotlib figure into self-contained HTML.

        Args:
            run_dir: the run folder (``results.parquet``, ``fitted/<step_id>…``, ``artifacts/<step_id>/``).
            step_id: the step's id; its columns in ``results`` are ``<step_id>.<name>``.
            results: ``results.parquet`` as a pandas ``DataFrame``.

        Returns:
            ``(title, html)`` pairs, in the order they should appear.
        """
        return []
