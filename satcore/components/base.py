"""What every component shares: params, lifecycle, batches and the run context."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from satcore.errors import ComponentError
from satcore.io import json_ready

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

    def artifacts_dir(self, step_id: str) -> Path:
        """The folder ``<run>/artifacts/<step_id>/`` for a step's own files, created on first call.

        For whatever a step makes beside its table cells: plots, tables, GeoPackages, per-item arrays. The
        folder is a run output: ``--overwrite`` removes it and :meth:`Component.report_sections` can read it
        back. Write files atomically (:func:`satcore.io.write_bytes`, :func:`satcore.io.atomic_path`): a
        resumed run processes an item again and rewrites its files. Numpy arrays a step returns as outputs
        land here too (``<item_id>.<key>.npy``, written by the engine).

        Raises:
            RuntimeError: the context has no run folder (a component built outside a run, as in a unit test
                that did not pass ``run_dir``).
        """
        if self.run_dir is None:
            raise RuntimeError("no run folder: a step's artifacts cannot be written (pass run_dir)")
        d = self.run_dir / "artifacts" / step_id
        d.mkdir(parents=True, exist_ok=True)
        return d


class Batch(Sequence["Item"]):
    """Items processed together, with what each one's ``input:`` produced upstream.

    ``inputs[i]`` is what the step reads for ``items[i]``:

    - ``input: <step_id>`` (one id): that step's output for the item, or the item itself for
      ``input: source``;
    - ``input: [<id>, <id>, …]`` (a list, even of one): a ``dict`` step id → that step's output for the item,
      in the order the spec lists them, with ``"source"`` → the item itself. Features combined across steps
      follow the ``features`` (n_images × F) / ``feature_names`` convention (docs/step-graph.md).

    An input step that failed on an item never reaches its dependants: the engine does not call them for that
    item. An item's result must never depend on which other items share its batch.
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


#: The longest list of scalars kept as one ``results.parquet`` cell; a longer list goes to a ``.npy`` file.
#: The table is read row by row (a DataFrame, a report table): label lists, top-k results, per-band or
#: per-date values fit; probability vectors over a vocabulary and embeddings (hundreds of numbers per image)
#: make every row unreadable and the table slow, and belong in a file beside it.
MAX_LIST_CELL = 64

_SCALARS = (bool, int, float, str)


def _is_scalar(x: Any) -> bool:
    return x is None or isinstance(x, (*_SCALARS, np.generic))


def table_cells(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Split one item's output values into table cells and arrays to store as files; drops nothing.

    - a scalar (numpy scalars and 0-d arrays included), a string or ``None``: a cell as it is;
    - a list or tuple of at most :data:`MAX_LIST_CELL` scalars: a list cell;
    - a numpy array, or a longer list of scalars: returned in the second dict (the engine writes it to
      ``artifacts/<step_id>/<item_id>.<key>.npy`` and puts the path in the cell ``<key>.path``);
    - a nested dict or list (JSON-able): a JSON string cell.

    Pure: it writes nothing and knows no run folder.

    Raises:
        ComponentError: a value is none of these (a :class:`~satcore.data.Raster`, an object); the message
            names the key and the type and says what to return instead.
    """
    cells: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    for k, v in values.items():
        if isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
        if isinstance(v, np.generic):
            v = v.item()
        if _is_scalar(v):
            cells[k] = v
        elif isinstance(v, np.ndarray):
            if v.dtype == object:
                raise ComponentError(f"output {k!r} is a numpy array of Python objects, which cannot be "
                                     "stored: return a numeric or string array, or a list/dict (as JSON)")
            arrays[k] = v
        elif isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v):
            if len(v) <= MAX_LIST_CELL:
                cells[k] = [x.item() if isinstance(x, np.generic) else x for x in v]
            elif any(x is None for x in v):  # numpy would make an object array of it: keep it readable
                cells[k] = json.dumps(json_ready(list(v)))
            else:
                arrays[k] = np.asarray(v)
        elif isinstance(v, (list, tuple, dict)):
            try:
                cells[k] = json.dumps(json_ready(v), allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ComponentError(
                    f"output {k!r} is a {type(v).__name__} holding something JSON cannot store ({exc}): "
                    "return numbers, strings, lists and dicts of them, or numpy arrays (to artifacts/)"
                ) from exc
        else:
            raise ComponentError(
                f"output {k!r} is a {type(v).__module__}.{type(v).__name__}, which a results.parquet cell "
                "cannot hold: return a number, a string, a list or dict of them (nested ones are stored as "
                "JSON), or a numpy array (written to artifacts/<step_id>/); write anything else yourself "
                "into self.artifacts_dir() and return its path")
    return cells, arrays


def scalar_columns(values: dict[str, Any]) -> dict[str, Any]:
    """Table cells from one item's output values, with the arrays left in for the engine to store.

    What :func:`table_cells` makes of ``values``, both parts in one dict: cells (scalars, strings, short
    lists, JSON strings of nested values) and numpy arrays (arrays, and lists longer than
    :data:`MAX_LIST_CELL`), which the engine writes to ``artifacts/<step_id>/<item_id>.<key>.npy``, with
    the path in ``<key>.path``.
    Nothing is dropped: a value that can be stored neither way raises.

    Raises:
        ComponentError: a value of a type that cannot be stored (see :func:`table_cells`).
    """
    cells, arrays = table_cells(values)
    return {**cells, **arrays}


class Component:
    """Base of every component kind.

    Subclasses set ``name`` (kebab-case, the YAML ``type:``), ``params_model``, ``consumes`` and ``produces``,
    import heavy libraries and load weights in :meth:`setup`, and process batches.

    The extension points a component may use are all declared here or on its kind's base class (never looked
    up with ``getattr``): the class attributes ``name``, ``params_model``, ``params_version``, ``consumes``,
    ``produces``, ``metric_blocks``; the class methods :meth:`upgrade_params` and :meth:`report_sections`;
    the methods :meth:`setup`, :meth:`teardown`, :meth:`models_used`, :meth:`columns`,
    :meth:`metric_prediction`, :meth:`metric_truth`, :meth:`metric_settings`; for detectors also ``fittable``
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

    def artifacts_dir(self) -> Path:
        """This step's folder for its own files, ``<run>/artifacts/<step_id>/`` (created on first call).

        For plots, tables, GeoPackages: see :meth:`RunContext.artifacts_dir`. Call it while processing or
        in :meth:`teardown`, not in ``__init__``.
        """
        return self.context.artifacts_dir(self.step_id)

    def columns(self, output: Any) -> dict[str, Any]:
        """Table cells for ``results.parquet`` from one item's output (prefixed with the step id later).

        The default keeps every key of a ``dict`` output (:func:`scalar_columns`). Whatever this returns,
        the engine stores it all or fails the step on the item, never drops a value: cells as they are,
        numpy arrays (and lists over :data:`MAX_LIST_CELL`) as ``artifacts/<step_id>/<item_id>.<key>.npy``
        with the path in ``<key>.path``, nested lists and dicts as JSON strings; any other type is a
        :class:`~satcore.errors.ComponentError` naming the step and the key. Override it to leave out what
        should not be stored (embeddings a cache keeps) or to reshape what should.
        """
        if isinstance(output, dict):
            return scalar_columns(output)
        return {}

    #: the ``metrics.json`` blocks this step is scored in (``recognition``, ``captions``, ``spectral``,
    #: ``image_quality``, ``forecast``; docs/metrics.md); each kind's base class sets its default.
    metric_blocks: ClassVar[tuple[str, ...]] = ()

    def metric_prediction(self, block: str, output: Any) -> Any | None:
        """What block ``block`` scores from one item's ``output`` (``None``: the item is not scored).

        Called once per item and block in :attr:`metric_blocks`; the kinds' base classes give the defaults
        (docs/metrics.md, "How a run fills the blocks").
        """
        return None

    def metric_truth(self, block: str, item: Item, output: Any) -> Any | None:
        """The truth block ``block`` scores against; ``None`` (the default): the item's own truth for it."""
        return None

    def metric_settings(self, block: str, output: Any) -> dict[str, Any]:
        """Per-item record settings for block ``block`` (e.g. forecast ``lower``/``upper``/``aic``)."""
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
