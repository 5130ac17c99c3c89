"""The example specs on a Dask cluster started as separate commands give the local executor's results.

A ``dask scheduler`` and two ``dask worker`` processes (``--nworkers 1 --nthreads 1`` each) run on 127.0.0.1
for the module, and runs reach them through ``execution.address``. The workers import satcore and the
plugins from this Python environment, as a user's workers would from theirs. Two examples run both ways:
``quickstart.yaml`` (classic detectors, maps) and ``levir-tree-baselines.yaml`` with a tiny random CLIP model
(probability-delta's fitted threshold and four fitted tree models, shipped to the workers with the sha256
record the tabular detectors check). Their ``results.parquet`` must be identical, value for value.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import satcore
from satcore.errors import RunStopped

pytest.importorskip("dask.distributed", reason="the [dask] extra is part of the test install")

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask_command() -> list[str]:
    """The ``dask`` command of this Python environment (the workers must import the same satcore)."""
    found = shutil.which("dask", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "dask"]


@contextmanager
def dask_cluster(n_workers: int, env: dict[str, str], log_dir: Path) -> Iterator[str]:
    """A scheduler and ``n_workers`` single-threaded worker processes on 127.0.0.1; yields the address.

    Every process is started here, in its own session, and always stopped (terminate, then kill).
    """
    from dask.distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = _dask_command()
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(name: str, args: list[str]) -> None:
        log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed in the finally below
        logs.append(log)
        procs.append(subprocess.Popen([*dask, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    try:
        start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])
        for i in range(n_workers):
            start(f"worker-{i}", ["worker", address, "--nworkers", "1", "--nthreads", "1",
                                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                                  "--memory-limit", "0"])
        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=90)
        yield address
    except Exception:
        for f in log_dir.glob("*.log"):  # say why the cluster did not come up
            sys.stderr.write(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}\n")
        raise
    finally:
        for p in procs:
            p.terminate()
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A tiny random CLIP checkpoint under alias ``tiny-dask``: the environment that makes it resolvable."""
    import open_clip
    import torch
    import yaml
    from satcore_clip.testing import TINY_CFG, TINY_NAME, TINY_PRE

    root = tmp_path_factory.mktemp("tiny-clip")
    cfg = root / f"{TINY_NAME}.json"
    cfg.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(str(cfg))
    torch.manual_seed(0)
    (root / "models" / "tiny-dask").mkdir(parents=True)
    torch.save(open_clip.create_model(TINY_NAME, pretrained=None).state_dict(),
               root / "models" / "tiny-dask" / "model.pt")
    reg = root / "registry.yaml"
    reg.write_text(yaml.safe_dump({"models": {"tiny-dask": {
        "family": "open_clip", "architecture": TINY_NAME, "model_cfg": TINY_CFG, "load": {"strict": True},
        "preprocess": TINY_PRE, "licence": "test only"}}}))
    return {"SATCORE_MODELS": str(root / "models"), "SATCORE_REGISTRY": str(reg),
            "SATCORE_HOME": str(root / "home"), "SATCORE_CACHE": str(root / "cache"),
            "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(root / "hf")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_clip: dict[str, str]) -> Iterator[str]:
    """The scheduler address of a 2-worker cluster whose workers see the tiny CLIP model."""
    env = {**os.environ, **tiny_clip, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    with dask_cluster(2, env, tmp_path_factory.mktemp("dask-logs")) as address:
        yield address


@pytest.fixture
def tiny_env(tiny_clip: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from satcore.registry import get_registry

    for k, v in tiny_clip.items():
        monkeypatch.setenv(k, v)
    get_registry(refresh=True)
    yield
    monkeypatch.undo()
    get_registry(refresh=True)


def _both_ways(example: str, tmp_path: Path, address: str, **overrides: Any) -> tuple[Path, Path]:
    """Run ``example`` locally and on the cluster; the two run folders."""
    outs = []
    for how, extra in (("local", {}), ("dask", {"execution.executor": "dask", "execution.address": address})):
        out = tmp_path / how
        satcore.run(EXAMPLES / example, overrides={"output.dir": str(out), "output.report": False,
                                                  **overrides, **extra}, progress=False)
        outs.append(out)
    return outs[0], outs[1]


def _table(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "results.parquet").sort_values("item_id").reset_index(drop=True)


def _check_identical(local: Path, dask: Path, address: str) -> dict[str, Any]:
    """Same rows and values (no timing columns exist: DESIGN keeps them out of the table); the manifest."""
    a, b = _table(local), _table(dask)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert json.loads((local / "metrics.json").read_text()) == json.loads((dask / "metrics.json").read_text())
    man = json.loads((dask / "manifest.json").read_text())
    ex = man["execution"]
    assert (man["executor"], ex["executor"], ex["cluster"], ex["address"]) == ("dask", "dask", "external",
                                                                              address)
    assert (ex["workers"], ex["threads_per_worker"]) == (2, 1)
    assert man["items"]["ok"] <= sum(ex["items_per_worker"].values()) <= man["items"]["total"]
    local_ex = json.loads((local / "manifest.json").read_text())["execution"]
    assert local_ex["executor"] == "local" and local_ex["workers"] == 1
    return man


def test_quickstart_same_results_on_an_external_cluster(tmp_path: Path, cluster: str) -> None:
    local, dask = _both_ways("quickstart.yaml", tmp_path, cluster)
    _check_identical(local, dask, cluster)
    maps = sorted(p.name for p in (local / "maps").iterdir())
    assert maps and maps == sorted(p.name for p in (dask / "maps").iterdir())


def test_fitted_example_same_results_on_an_external_cluster(tmp_path: Path, cluster: str,
                                                            tiny_env: None) -> None:
    """levir-tree-baselines: the thresholds and tree models fitted by the driver reach both workers."""
    local, dask = _both_ways("levir-tree-baselines.yaml", tmp_path, cluster,
                             **{"steps.probs.model": "tiny-dask", "execution.device": "cpu"})
    man = _check_identical(local, dask, cluster)
    fitted = sorted(man["fitted"])
    assert fitted == ["boosting", "delta", "forest", "tree", "xgboost"], fitted
    # the fitted models decided: the tree models' scores are not all one constant
    assert _table(dask)["forest.score"].nunique() > 1


def test_a_plugin_missing_on_the_workers_is_named(tmp_path: Path, cluster: str, h: Any,
                                                  monkeypatch: pytest.MonkeyPatch, levir_dir: Path) -> None:
    """A detector only this process has: the run stops before any batch, naming each worker and the plugin."""
    import satcore.plugins
    from satcore.components import Detection, Detector, DetectorParams
    from satcore.plugins import get_plugin_manager

    class OnlyHere(Detector):
        name = "only-here"
        params_model = DetectorParams

        def process(self, batch: Any) -> list[Detection]:
            return [Detection(score=0.0, label=0) for _ in batch]

    pm = get_plugin_manager(fresh=True)
    pm.register_plugin(h.plugin_module("only_here", satcore_register_detectors=[OnlyHere]),
                       "only-here-plugin", "satcore-only-here", "0.0.1")
    monkeypatch.setattr(satcore.plugins, "_DEFAULT", pm)
    spec = {"version": 1, "source": {"type": "folder-pairs", "root": str(levir_dir)},
            "steps": [{"id": "x", "type": "only-here"}],
            "output": {"dir": str(tmp_path / "run"), "report": False},
            "execution": {"executor": "dask", "address": cluster}}
    with pytest.raises(RunStopped) as err:
        satcore.run(spec, progress=False, pm=pm)
    msg = str(err.value)
    assert msg.count("worker tcp://127.0.0.1:") == 2, msg  # both workers named
    assert "'only-here-plugin'" in msg and "pip install satcore-only-here" in msg and "step 'x'" in msg
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert man["status"] == "stopped" and man["execution"]["workers"] == 2
