"""Every hook in satcore/hookspecs.py, exercised by a plugin registered with the satcore.testing fixtures.

tests/test_docs.py checks that each hook is named in at least one test; these are the tests that name them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import click
import numpy as np
import pytest
from pydantic import Field

from satcore import hookimpl
from satcore.cli import main
from satcore.components import (
    Batch,
    Captioner,
    Detection,
    Detector,
    Extractor,
    Generator,
    Params,
    Recognizer,
    Source,
)
from satcore.data import Item, ItemRef
from satcore.registry import Registry
from satcore.testing import make_change_pair


class MemoryParams(Params):
    n: int = Field(3, ge=1, description="How many seeded pairs to yield.")


class MemorySource(Source):
    """Seeded pairs with planted changes, made in memory."""

    name = "memory-pairs"
    params_model = MemoryParams
    produces: ClassVar[tuple[str, ...]] = ("pair", "mask")

    def list_items(self) -> Iterable[ItemRef]:
        return [ItemRef(f"m{i}", {}, {"tile": f"m{i}", "seed": i}) for i in range(self.params.n)]

    def load(self, ref: ItemRef) -> Item:
        return make_change_pair(ref.item_id, seed=ref.meta["seed"], change=ref.meta["seed"] > 0)


class MeanDiffExtractor(Extractor):
    """Mean absolute difference."""

    name = "mean-diff"
    consumes: ClassVar[tuple[str, ...]] = ("pair",)
    produces: ClassVar[tuple[str, ...]] = ("features",)

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"mean_diff": float(np.abs(np.subtract(*it.pair_arrays())).mean())} for it in batch]


class FeatureDetector(Detector):
    """Change when the extracted mean difference is large."""

    name = "feature-threshold"
    consumes: ClassVar[tuple[str, ...]] = ("features",)

    def process(self, batch: Batch) -> list[Detection]:
        return [Detection(score=f["mean_diff"], label=int(f["mean_diff"] > 5))
                for _it, f in batch.with_inputs()]


class CountCaptioner(Captioner):
    """Caption with the image size."""

    name = "size-captioner"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"captions": [f"{r.shape[0]}x{r.shape[1]} image" for r in it.images]} for it in batch]


class ConstantRecognizer(Recognizer):
    """Always 'land'."""

    name = "constant-recognizer"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"labels": ["land"], "scores": [1.0]} for _ in batch]


class CopyGenerator(Generator):
    """Returns the after image unchanged."""

    name = "copy-generator"

    def process(self, batch: Batch) -> list[dict[str, Any]]:
        return [{"images": [it.images[-1]], "n_images": 1} for it in batch]


class EveryHookPlugin:
    """A plugin implementing every hook satcore declares."""

    def __init__(self, weights: Path | None = None) -> None:
        self.weights = weights

    @hookimpl
    def satcore_register_sources(self) -> list[type[Any]]:
        return [MemorySource]

    @hookimpl
    def satcore_register_extractors(self) -> list[type[Any]]:
        return [MeanDiffExtractor]

    @hookimpl
    def satcore_register_detectors(self) -> list[type[Any]]:
        return [FeatureDetector]

    @hookimpl
    def satcore_register_captioners(self) -> list[type[Any]]:
        return [CountCaptioner]

    @hookimpl
    def satcore_register_recognizers(self) -> list[type[Any]]:
        return [ConstantRecognizer]

    @hookimpl
    def satcore_register_generators(self) -> list[type[Any]]:
        return [CopyGenerator]

    @hookimpl
    def satcore_register_model_aliases(self) -> dict[str, dict[str, Any]]:
        return {"hooks-test-model": {"family": "checkpoint", "licence": "test"},
                "clip-vit-b32": {"family": "checkpoint", "licence": "must not override the root registry"}}

    @hookimpl
    def satcore_register_commands(self, cli: click.Group) -> None:
        @cli.command("hooks-hello")
        @click.argument("who")
        def hello(who: str) -> None:
            """Say hello (a plugin command)."""
            click.echo(f"hello {who} from a plugin")

    @hookimpl
    def satcore_locate_weights(self, alias: str, entry: dict[str, Any]) -> str | None:
        return str(self.weights) if alias == "hooks-test-model" and self.weights else None


class DeclinesPlugin:
    """Registered after EveryHookPlugin, so pluggy asks it first; it declines (firstresult goes on)."""

    @hookimpl
    def satcore_locate_weights(self, alias: str, entry: dict[str, Any]) -> str | None:
        return None


@pytest.fixture
def every_hook(satcore_pm, tmp_path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"not really weights")
    satcore_pm.register_plugin(EveryHookPlugin(weights), "every-hook")
    yield satcore_pm
    satcore_pm.unregister_plugin("every-hook")


def test_component_hooks_feed_the_catalogue_and_a_pipeline(every_hook, run_pipeline):
    cat = every_hook.catalogue()
    assert cat["source"]["memory-pairs"] is MemorySource
    for kind, cls in [("extractor", MeanDiffExtractor), ("detector", FeatureDetector),
                      ("captioner", CountCaptioner), ("recognizer", ConstantRecognizer),
                      ("generator", CopyGenerator)]:
        assert cat[kind][cls.name] is cls and cls.plugin_name == "every-hook"
    out = run_pipeline({
        "source": {"type": "memory-pairs", "n": 3},
        "steps": [{"id": "feat", "type": "mean-diff"}, {"id": "change", "type": "feature-threshold"},
                  {"id": "caps", "type": "size-captioner"}, {"id": "rec", "type": "constant-recognizer"},
                  {"id": "gen", "type": "copy-generator"}],
    })
    t = out.table.sort_values("item_id")
    assert out.errors == [] and list(t["item_id"]) == ["m0", "m1", "m2"]
    assert list(t["change.label"]) == [0, 1, 1]  # m0 has no planted change
    assert list(t["caps.captions"].map(list)) == [["32x32 image", "32x32 image"]] * 3
    assert list(t["rec.labels"].map(list)) == [["land"]] * 3 and list(t["gen.n_images"]) == [1, 1, 1]


def test_model_alias_hook_adds_but_never_overrides(every_hook):
    from satcore.registry import get_registry

    assert "hooks-test-model" in get_registry().models  # the cached registry sees the test plugin
    reg = Registry.load()
    assert reg.models["hooks-test-model"]["licence"] == "test"
    assert reg.origins["hooks-test-model"] == "plugin every-hook"
    assert reg.origins["clip-vit-b32"] == "satcore"


def test_test_aliases_do_not_leak_into_the_cached_registry():
    # runs right after the test above (file order); without satcore_pm dropping the cache at teardown the
    # alias registered there would still be in the cached registry
    from satcore import plugins, registry
    from satcore.registry import get_registry

    previous = plugins.set_plugin_manager(plugins.get_plugin_manager(fresh=True, entrypoints=False))
    try:
        assert "hooks-test-model" not in get_registry().models
    finally:
        plugins.set_plugin_manager(previous)
        registry.clear_registry_cache()


def test_locate_weights_hook_is_the_last_search_step(every_hook, tmp_path, monkeypatch):
    monkeypatch.setenv("SATCORE_MODELS", str(tmp_path / "empty-models"))
    every_hook.register_plugin(DeclinesPlugin(), "declines")
    try:
        found = Registry.load().resolve("hooks-test-model")
    finally:
        every_hook.unregister_plugin("declines")
    assert found.source == "library-cache" and found.path == tmp_path / "weights.pt"


def test_register_commands_hook_adds_a_cli_command(every_hook, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["hooks-hello", "world"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == "hello world from a plugin\n"

