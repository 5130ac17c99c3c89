"""The training folder: ``train.json``, ``losses.jsonl``, ``checkpoints/`` and ``report.html``.

:class:`TrainingRun` is the public, torch-free API a plugin's trainer writes through. The plugin owns the
model and the loop; the core owns the folder, so every trainer resumes, logs and reports the same way.

Folder layout::

    DIR/train.json         name, config (+ hash), seed, data, model, versions, status, times, last step
    DIR/losses.jsonl       one JSON line per logged step: {"step", "epoch", <loss>: value, ..., "time"}
    DIR/checkpoints/       step-00000100.pt, ... (written atomically; the newest is what --resume loads)
    DIR/report.html        self-contained page with one loss-curve figure per loss key
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

from satcore.errors import ResumeError, SatcoreError, UsageError
from satcore.io import atomic_path, is_temp_name, json_ready, write_json, write_text
from satcore.training.folder import (
    CHECKPOINTS,
    FORMAT,
    LOSSES,
    OUTPUT_NAMES,
    REPORT,
    RESERVED_KEYS,
    TRAIN_JSON,
    read_losses,
)

__all__ = ["CHECKPOINTS", "LOSSES", "OUTPUT_NAMES", "REPORT", "TRAIN_JSON", "Checkpoint", "TrainingRun",
           "config_hash", "read_losses"]

_CKPT = re.compile(r"^step-(\d+)")


class Checkpoint(NamedTuple):
    """A checkpoint in ``checkpoints/``: the step it was saved after, and its path."""

    step: int
    path: Path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_hash(name: str, config: Mapping[str, Any], seed: int) -> str:
    """The hash ``--resume`` compares: trainer name, config and seed (16 hex digits of SHA-256)."""
    text = json.dumps(json_ready({"name": name, "config": dict(config), "seed": seed}), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (for the changed-config message)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new), key=str)
        return [k for key in keys for k in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".") or "(the whole config)"]


class TrainingRun:
    """One training folder, created or resumed by :meth:`open`.

    Use it as a context manager: leaving the block normally finishes the run as ``complete``, an exception
    (or Ctrl-C) as ``stopped``; both write ``train.json`` and ``report.html``.
    """

    def __init__(self, directory: Path, info: dict[str, Any], *, checkpoint_suffix: str = ".pt",
                 keep_checkpoints: int | None = None, quiet: bool = False) -> None:
        self.dir = directory
        self.info = info
        self.checkpoint_suffix = checkpoint_suffix
        self.keep_checkpoints = keep_checkpoints
        self.quiet = quiet
        self.resumed_from: Checkpoint | None = None
        self.finished = False
        #: set by :func:`~satcore.training.train_command` when a config model validated the config
        self.params: Any = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, output_dir: str | os.PathLike[str], config: Mapping[str, Any], *, name: str,
             resume: bool = False, overwrite: bool = False, seed: int | None = None,
             data: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None,
             versions: Mapping[str, str] | None = None, checkpoint_suffix: str = ".pt",
             keep_checkpoints: int | None = None, quiet: bool = False) -> TrainingRun:
        """Create the training folder, or reopen it with ``resume=True``.

        Args:
            output_dir: the folder (created if missing).
            config: the training config (after ``--set``); stored in ``train.json`` and hashed.
            name: the trainer's name (``satcore train <name>``).
            resume: continue the run in ``output_dir``: same name, config and seed required.
            overwrite: replace an earlier training folder (only files a training run writes).
            seed: the random seed; default ``config["seed"]``, else 0.
            data: a description of the training data (paths, item counts) for ``train.json``.
            model: the ``model`` section of ``train.json`` (see :func:`set_model`).
            versions: extra versions to record (the plugin's distribution → version).
            checkpoint_suffix: file suffix of checkpoints (``.pt``, ``.npz``, ``.safetensors``).
            keep_checkpoints: keep only the newest N checkpoints (``None``: keep all).
            quiet: no progress bar.

        Raises:
            UsageError: both flags, or a non-empty folder without ``--resume``/``--overwrite``, or files
                that are not a training run's in the way of ``--overwrite`` (exit 2).
            ResumeError: the folder holds no training run, another trainer's, or one with another config
                or seed (exit 2).
        """
        out = Path(output_dir)
        if resume and overwrite:
            raise UsageError("choose one of --resume and --overwrite")
        if out.exists() and not out.is_dir():
            raise UsageError(f"--output {out} exists and is not a folder")
        if seed is None:
            raw = config.get("seed", 0)
            seed = int(raw) if isinstance(raw, (int, float, str)) and str(raw).lstrip("-").isdigit() else 0
        digest = config_hash(name, config, seed)
        opts: dict[str, Any] = {"checkpoint_suffix": checkpoint_suffix, "keep_checkpoints": keep_checkpoints,
                                "quiet": quiet}
        entries = list(out.iterdir()) if out.is_dir() else []
        if entries and resume:
            return cls._reopen(out, name, config, seed, digest, versions or {}, opts)
        if entries:
            if not overwrite:
                raise UsageError(f"output folder {out} is not empty; add --resume to continue that training "
                                 "or --overwrite to replace it")
            foreign = [p.name for p in entries if p.name not in OUTPUT_NAMES and not is_temp_name(p.name)]
            if foreign:
                raise UsageError(f"--overwrite refused: {out} holds files satcore did not write "
                                 f"({', '.join(sorted(foreign)[:5])}); choose an empty --output")
            for p in entries:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        from satcore.version import __version__

        info: dict[str, Any] = {
            "format": FORMAT, "name": name, "status": "running", "config": dict(config),
            "config_hash": digest, "seed": seed, "data": dict(data or {}), "model": dict(model or {}),
            "versions": {"satcore": __version__, "python": platform.python_version(), **(versions or {})},
            "started": _now(), "ended": None, "last_step": None, "last_checkpoint": None, "error": None,
            "resumes": [],
        }
        run = cls(out, info, **opts)
        run._write_info()
        return run

    @classmethod
    def _reopen(cls, out: Path, name: str, config: Mapping[str, Any], seed: int, digest: str,
                versions: Mapping[str, str], opts: dict[str, Any]) -> TrainingRun:
        tj = out / TRAIN_JSON
        if not tj.is_file():
            raise ResumeError(f"{out} has no {TRAIN_JSON}, so it is not a training folder to resume; use "
                              "--overwrite or another --output")
        try:
            info = json.loads(tj.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ResumeError(f"{tj} is not valid JSON ({exc}); use --overwrite to start again") from exc
        if info.get("name") != name:
            raise ResumeError(f"{out} holds a `satcore train {info.get('name')}` run, not `{name}`; use "
                              "another --output")
        if info.get("config_hash") != digest:
            what = _changed_keys({**info.get("config", {}), "seed": info.get("seed")},
                                 {**dict(config), "seed": seed})
            raise ResumeError(
                f"the config changed since the training in {out} began (config hash "
                f"{info.get('config_hash')} → {digest}; changed: {', '.join(what[:8]) or 'unknown'}); "
                "resuming would mix two configs. "
                "Use the old config, --overwrite to start again, or another --output")
        run = cls(out, info, **opts)
        ckpt = run.latest_checkpoint()
        run.resumed_from = ckpt
        run._trim_losses(ckpt.step if ckpt else None)
        info.update(status="running", ended=None, error=None,
                    last_step=ckpt.step if ckpt else None,
                    last_checkpoint=ckpt.path.relative_to(out).as_posix() if ckpt else None)
        info.setdefault("resumes", []).append({"at": _now(), "from_step": ckpt.step if ckpt else None})
        info.setdefault("versions", {}).update(versions)
        run._write_info()
        return run

    def _trim_losses(self, upto: int | None) -> None:
        """Keep only lines up to the checkpoint resumed from: the steps after it are trained again."""
        path = self.dir / LOSSES
        if not path.is_file():
            return
        keep = [r for r in read_losses(self.dir) if upto is not None and r["step"] <= upto]
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in keep)
        if text != path.read_text(encoding="utf-8"):
            write_text(path, text)

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        """The trainer's name."""
        return str(self.info["name"])

    @property
    def config(self) -> dict[str, Any]:
        """The training config as given (after ``--set``)."""
        return dict(self.info["config"])

    @property
    def seed(self) -> int:
        """The random seed."""
        return int(self.info["seed"])

    @property
    def status(self) -> str:
        """``running``, ``complete`` or ``stopped``."""
        return str(self.info["status"])

    @property
    def start_step(self) -> int:
        """The step to continue after: that of the checkpoint resumed from, else 0."""
        return self.resumed_from.step if self.resumed_from else 0

    # ------------------------------------------------------------------ describing
    def set_model(self, family: str, architecture: str | None = None, **fields: Any) -> None:
        """Fill ``train.json``'s ``model`` section, which makes the folder usable as ``model: <folder>``.

        Args:
            family: the model family a step understands (the registry's ``family``, e.g. ``cyclegan``).
            architecture: the architecture within the family (e.g. ``resnet9``).
            **fields: anything else the loading step needs (``bands``, ``input_size``, ``licence``,
                ``checkpoint``: a path relative to the folder, default the newest checkpoint).
        """
        self.info["model"] = {"family": family, "architecture": architecture, **fields}
        self._write_info()

    def describe_data(self, **fields: Any) -> None:
        """Record the training data in ``train.json``'s ``data`` section (paths, item counts, splits)."""
        self.info.setdefault("data", {}).update(fields)
        self._write_info()

    # ------------------------------------------------------------------ logging
    def log_losses(self, step: int, epoch: int | None = None, **values: Any) -> None:
        """Append one line to ``losses.jsonl``: the step, epoch and each loss value.

        The line is written with one ``write`` and flushed to disk (``fsync``), so a killed run leaves at most
        a cut-short last line, which readers skip and ``--resume`` removes. Values may be Python or numpy
        numbers or 0-d tensors (anything ``float()`` accepts); NaN is stored as ``null``.
        """
        bad = [k for k in values if k in RESERVED_KEYS]
        if bad:
            raise ValueError(f"log_losses: {bad[0]!r} is reserved in losses.jsonl; name the loss otherwise")
        rec: dict[str, Any] = {"step": int(step)}
        if epoch is not None:
            rec["epoch"] = int(epoch)
        rec.update({k: float(v) for k, v in values.items()})
        rec["time"] = _now()
        line = json.dumps(json_ready(rec), allow_nan=False) + "\n"
        with open(self.dir / LOSSES, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.info["last_step"] = int(step)

    def losses(self) -> list[dict[str, Any]]:
        """The logged lines so far."""
        return read_losses(self.dir)

    def progress(self, total: int, initial: int = 0, desc: str | None = None,
                 file: IO[str] | None = None) -> Any:
        """A tqdm bar over steps, with rate and ETA; shown only on a terminal (and not with ``--quiet``).

        Args:
            total: the number of steps of the whole training.
            initial: where it starts (``run.start_step`` after ``--resume``), so the ETA counts only what is
                left.
            desc: the label (default ``train <name>``).
            file: the stream (default stderr).
        """
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc or f"train {self.name}", unit="step",
                    file=file or sys.stderr, disable=True if self.quiet else None, dynamic_ncols=True)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self, step: int) -> Path:
        """``checkpoints/step-<step, 8 digits><suffix>``."""
        return self.dir / CHECKPOINTS / f"step-{int(step):08d}{self.checkpoint_suffix}"

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint present, oldest first (temporary files of interrupted writes are ignored)."""
        d = self.dir / CHECKPOINTS
        found = []
        for p in d.iterdir() if d.is_dir() else []:
            m = _CKPT.match(p.name)
            if m and not p.name.startswith("."):
                found.append(Checkpoint(int(m.group(1)), p))
        return sorted(found)

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint (highest step), or ``None``."""
        found = self.checkpoints()
        return found[-1] if found else None

    def save_checkpoint(self, step: int, write_fn: Callable[[Path], Any]) -> Path:
        """Write a checkpoint atomically: ``write_fn(tmp)`` writes to a temporary path, renamed when done.

        ``write_fn`` gets a path, e.g. ``lambda p: torch.save(state, p)``. A writer that appends its own
        suffix to file names (``numpy.savez``) must be given an open file instead:
        ``lambda p: np.savez(open(p, "wb"), ...)``. Records the step in ``train.json``; with
        ``keep_checkpoints`` the oldest beyond that number are removed.
        """
        path = self.checkpoint_path(step)
        with atomic_path(path) as tmp:
            write_fn(tmp)
            if not tmp.exists():
                raise SatcoreError(f"save_checkpoint: write_fn wrote nothing to {tmp} (did the writer add a "
                                   "suffix to the name? give it an open file instead)")
        self.info.update(last_step=int(step), last_checkpoint=path.relative_to(self.dir).as_posix())
        self._write_info()
        if self.keep_checkpoints:
            for old in self.checkpoints()[:-self.keep_checkpoints]:
                if old.path != path:
                    shutil.rmtree(old.path) if old.path.is_dir() else old.path.unlink()
        return path

    # ------------------------------------------------------------------ finishing
    def finish(self, status: str = "complete", error: str | None = None) -> Path:
        """Record the final status (``complete`` or ``stopped``), write ``report.html``; returns its path."""
        if status not in ("complete", "stopped"):
            raise ValueError(f"finish: status must be 'complete' or 'stopped', not {status!r}")
        self.info.update(status=status, ended=_now(), error=error)
        self._write_info()
        self.finished = True
        from satcore.training.report import build_training_report

        return build_training_report(self.dir)

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.finished:
            return
        if exc is None:
            self.finish("complete")
        else:
            self.finish("stopped", error=f"{type(exc).__name__}: {exc}".rstrip(": "))

    def _write_info(self) -> None:
        write_json(self.dir / TRAIN_JSON, self.info)
