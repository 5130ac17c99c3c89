"""The pipeline spec as pydantic models (the fixed keys; component params are validated per component)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

# defined with the components (plugins' params use them too); re-exported here, where they were first
from satcore.components.paths import SpecPath as SpecPath
from satcore.components.paths import resolve_spec_path as resolve_spec_path


class _Strict(BaseModel):
    # NaN or infinity is never a meaningful fraction, count or range here (`test: .nan` would split nothing)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ComponentSpec(BaseModel):
    """A source or step: ``type`` plus the component's own params (checked against its ``params_model``)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="The component name (kebab-case), e.g. `folder-pairs` or `cva`.")


class StepSpec(ComponentSpec):
    """One step of the pipeline."""

    id: str | None = Field(
        None, description="Unique step id; defaults to the type. Columns are `<id>.<name>`.")
    input: str | list[str] | None = Field(
        None, description="`source` or a step id; or a list of them, and the component gets a mapping "
        "step id → that step's outputs. Defaults to the previous step when it produces what this step "
        "consumes, else the source. An input may be a later step in the file: steps run after their inputs.")
    allow_remote_code: bool = Field(
        False, description="Let this step's model run Python code from its own repository (for aliases "
        "whose registry entry says `needs: [trust_remote_code]`); refused otherwise.")


class SplitSpec(_Strict):
    """A random train/test split, grouped so related items stay on one side."""

    test: float = Field(0.3, gt=0, lt=1, description="Fraction of groups in the test split.")
    group_by: str | None = Field("tile", description="Item metadata key whose values never straddle the "
                                 "split (e.g. `tile`, so crops of one tile stay together); "
                                 "null = each item alone.")
    seed: int | None = Field(None, description="Split seed; defaults to the spec's `seed`.")


class SplitBySpec(_Strict):
    """A predefined split: each item's metadata value names its split (a dataset's published splits)."""

    by: str = Field(description="Item metadata key whose value is the item's split: `train`, `val` or "
                    "`test` (e.g. `split`, set by `folder-pairs` over `train/ val/ test/` folders, or a "
                    "`split` column of a manifest or text file). `val` items are kept as their own split "
                    "`val`: scored in metrics.json, never fitted on.")

    @property
    def group_by(self) -> None:
        """No grouping key: the split is given, not drawn."""
        return None


def _split_shape(value: Any) -> str:
    """Which split shape a value means: ``by`` when it has a ``by`` key, else the random split."""
    if isinstance(value, dict):
        return "SplitBySpec" if "by" in value else "SplitSpec"
    return "SplitBySpec" if isinstance(value, SplitBySpec) else "SplitSpec"


#: ``evaluate.split``: the random split or the predefined one, told apart by the ``by`` key, so a mistake is
#: reported against the shape the user meant (``{by: split, test: 0.3}`` → ``split.test: unknown key``). The
#: tags are the class names, which the spec loader recognises as union members and keeps out of locations.
SplitShape = Annotated[Annotated[SplitSpec, Tag("SplitSpec")] | Annotated[SplitBySpec, Tag("SplitBySpec")],
                       Discriminator(_split_shape)]


#: The names ``evaluate.augment.copies`` accepts for the two image classes.
CLASS_KEYS = {"0": 0, "1": 1, "unchanged": 0, "no change": 0, "no-change": 0, "changed": 1, "change": 1}


class AugmentSpec(_Strict):
    """Training-side augmentation (applied after the split, to train items only)."""

    copies: int | dict[int | str, int] = Field(
        1, description="Augmented copies per training item; or per class, `{0: 1, 1: 0}` or "
        "`{unchanged: 1, changed: 0}` (a class left out gets none; `balance` is then not applied).")
    balance: bool = Field(True, description="Give the minority class extra copies so classes even out "
                          "(with one `copies` number).")

    @field_validator("copies")
    @classmethod
    def _copies(cls, v: int | dict[int | str, int]) -> int | dict[int | str, int]:
        if isinstance(v, int):
            if v < 0:
                raise ValueError(f"copies must be 0 or more, got {v}")
            return v
        out: dict[int | str, int] = {0: 0, 1: 0}
        for key, n in v.items():
            cls_ = CLASS_KEYS.get(str(key).strip().lower())
            if cls_ is None:
                raise ValueError(f"copies: unknown class {key!r}; use 0/1 or "
                                 f"{', '.join(sorted(k for k in CLASS_KEYS if not k.isdigit()))}")
            if not isinstance(n, int) or n < 0:
                raise ValueError(f"copies.{key}: give a whole number 0 or more, got {n!r}")
            out[cls_] = n
        return out
    scale: tuple[float, float] = Field((0.5, 1.5), description="Random scale range.")
    rotate: tuple[float, float] = Field((-90.0, 90.0), description="Random rotation range in degrees.")


class EvaluateSpec(_Strict):
    """How results are scored against the truth."""

    split: SplitShape | None = Field(
        None, description="`{test: 0.3, group_by: tile}` draws a train/test split; `{by: <meta key>}` uses "
        "the split each item names (`train`, `val`, `test`); omit for one split named `all`.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples over items for the 95% intervals.")
    bins: int = Field(1000, ge=10, le=100000, description="Histogram bins for pixel AUC (maps are quantised "
                      "to these bins so scikit-learn on the maps reproduces metrics.json).")
    augment: AugmentSpec | None = Field(None, description="Augment the training side before fitting.")


class PolygonsSpec(_Strict):
    """Change maps as polygons."""

    min_area: float = Field(0.0, ge=0, description="Drop patches smaller than this, in the map's area unit "
                            "(CRS units², m² for a projected CRS; pixels for ungeoreferenced maps).")


class OutputSpec(_Strict):
    """Where and what to write."""

    dir: SpecPath = Field(description="Output folder (relative to the spec file).")
    maps: bool = Field(True, description="Write `maps/<item_id>.tif` for detectors that produce change maps.")
    polygons: bool | PolygonsSpec = Field(
        True, description="With `maps`: polygonise the change maps into `artifacts/<step_id>/polygons.gpkg` "
        "(`{min_area: …}`; false: don't).")
    report: bool = Field(True, description="Write `report.html`.")
    report_items: int = Field(6, ge=0, description="Items the report's panels and map show, highest scores "
                              "first.")


class ExecutionSpec(_Strict):
    """How to run."""

    executor: Literal["local", "dask"] = Field("local", description="`local` (default) or `dask`.")
    workers: int = Field(1, ge=1, description="Worker processes (dask: size of a local cluster).")
    address: str | None = Field(None, description="Dask scheduler address; null starts a local cluster.")
    batch_size: int = Field(32, ge=1, description="Items per batch.")
    device: str = Field("auto", description="`auto` (CUDA when present), `cpu`, `cuda`, `cuda:1`, ...")
    loader_workers: int = Field(2, ge=0, description="Threads reading items ahead of the model; the first "
                                "items are read both ways and the threads are kept only if they read "
                                "faster (small chips read faster serially; see manifest.json `loading`). "
                                "0: always serial.")
    loader: Literal["threads", "processes"] = Field(
        "threads", description="How `loader_workers` read ahead. `threads` (default): probed against serial "
        "reading on the first items. `processes`: no GIL (rasterio's open and metadata calls hold it, "
        "about 0.2 ms per image, which caps threads near 5,000 images/s however many cores there are); "
        "items are pickled back, and the source must be importable in a fresh Python process.")
    threads: int | None = Field(None, ge=1, description="CPU threads a model step computes with (torch "
                                "intra-op threads on the CPU); null: measured on the first batches, torch's "
                                "default against the cores left over by `loader_workers` (reading and "
                                "computing share the cores), the faster kept.")
    on_error: Literal["skip", "fail"] = Field("skip", description="`skip`: list failed items in errors.jsonl "
                                              "and go on; `fail`: stop the run (exit 1).")
    limit: int | None = Field(None, ge=1, description="Process only the first N items (smoke runs).")


class PipelineSpec(_Strict):
    """A satcore pipeline: a source, steps, and how to evaluate, write and execute them."""

    version: Literal[1] = Field(description="Spec format version; currently 1.")
    name: str | None = Field(None, description="Run name (defaults to the file name).")
    seed: int = Field(0, description="Seed for splits, augmentation and stochastic components.")
    source: ComponentSpec = Field(description="Where items come from.")
    steps: list[StepSpec] = Field(min_length=1, description="Steps in order.")
    evaluate: EvaluateSpec = Field(default_factory=cast("Callable[[], EvaluateSpec]", EvaluateSpec),
                                   description="Scoring against the truth.")
    output: OutputSpec = Field(description="Outputs.")
    execution: ExecutionSpec = Field(default_factory=cast("Callable[[], ExecutionSpec]", ExecutionSpec),
                                     description="Execution settings.")


def model_fields_for(model: type[BaseModel]) -> dict[str, Any]:
    """Field name → annotation (used to suggest keys)."""
    return {k: v.annotation for k, v in model.model_fields.items()}
