"""``registry.yaml``: model aliases and the one weight search order.

This module reads registry files and resolves weights; it imports no plugin code. Plugin-provided aliases
(``satcore_register_model_aliases``) and weight locators (``satcore_locate_weights``) are passed in, either
per call (``Registry.load(plugin_aliases=[...], locate=...)``) or once per process through
:func:`set_plugin_source`, which :mod:`satcore.plugins` calls when it is imported. The ``plugins:``
catalogue is read by :mod:`satcore.catalogue`.

A bare path that is a training folder (``model: runs/my-train``, a ``satcore train --output``) resolves to
its checkpoint with the family and architecture its ``train.json`` records (:mod:`satcore.registry_folders`);
an unfinished one is a :class:`~satcore.errors.SpecError` saying how to finish it.

Search order for an alias's weights (printed in every missing-weights error):

1. an explicit path in the spec (a step's ``weights:``, or an alias whose ``path:`` is set);
2. ``$SATCORE_MODELS/<alias>/`` (default ``~/.cache/satcore/models/<alias>/``);
3. the library's own cache: the Hugging Face hub cache for entries with ``hf_repo``, then any plugin's
   :func:`~satcore.hookspecs.satcore_locate_weights`.

Nothing is ever downloaded here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

import yaml

from satcore.errors import MissingWeightsError, SpecError
from satcore.registry_folders import is_training_folder, training_folder_model

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")

#: What an alias may declare in ``needs:`` and what each means (shown when a step lacks the permission).
NEEDS = {"trust_remote_code": "it runs Python code from the model's own repository (transformers' "
                              "trust_remote_code), which satcore cannot check"}

#: ``(plugin name, {alias: entry})`` pairs, highest precedence first.
PluginAliases = Sequence[tuple[str, Mapping[str, Any]]]
#: ``locate(alias, entry) -> path or None``: a library cache only a plugin knows.
WeightLocator = Callable[[str, dict[str, Any]], Union[str, os.PathLike[str], None]]  # noqa: UP007


@dataclass
class PluginSource:
    """Where the process's plugin aliases and weight locators come from (set by :mod:`satcore.plugins`)."""

    aliases: Callable[[], PluginAliases]
    locate: WeightLocator


_PLUGIN_SOURCE: PluginSource | None = None


def set_plugin_source(source: PluginSource | None) -> None:
    """Install the provider of plugin aliases and locators for :func:`get_registry` (drops the cache)."""
    global _PLUGIN_SOURCE
    _PLUGIN_SOURCE = source
    _cached_registry.cache_clear()


def satcore_home() -> Path:
    """``$SATCORE_HOME`` or ``~/.config/satcore``."""
    return Path(os.environ.get("SATCORE_HOME") or Path.home() / ".config" / "satcore")


def models_dir() -> Path:
    """``$SATCORE_MODELS`` or ``~/.cache/satcore/models``."""
    return Path(os.environ.get("SATCORE_MODELS") or Path.home() / ".cache" / "satcore" / "models")


def cache_dir() -> Path:
    """``$SATCORE_CACHE`` or ``~/.cache/satcore`` (embedding caches, the checkpoint hash memo)."""
    return Path(os.environ.get("SATCORE_CACHE") or Path.home() / ".cache" / "satcore")


def sha256_file(path: Path, memo_dir: Path | None = None) -> str:
    """SHA-256 of a file, remembered in ``memo_dir/sha256.json`` per (path, size, mtime).

    A ViT-L-14 checkpoint (1.7 GB) takes seconds to hash; with the memo each file is hashed once, and a
    changed file (other size or mtime) is hashed again. A memo that cannot be read or written only costs
    the time.
    """
    import json

    st = path.stat()
    memo_key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = memo_dir / "sha256.json" if memo_dir else None
    known: dict[str, str] = {}
    if memo is not None and memo.exists():
        try:
            known = json.loads(memo.read_text())
        except (OSError, ValueError):
            known = {}
        if memo_key in known:
            return known[memo_key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            known[memo_key] = digest
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known))
            os.replace(tmp, memo)
        except OSError:
            pass
    return digest


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home) / "hub"


def builtin_registry_path() -> Path:
    """The root ``registry.yaml`` shipped with satcore."""
    here = Path(__file__).resolve().parent
    packaged = here / "registry.yaml"
    return packaged if packaged.exists() else here.parent / "registry.yaml"


@dataclass
class ResolvedModel:
    """Where an alias's weights were found."""

    alias: str
    entry: dict[str, Any]
    path: Path | None
    source: str
    searched: list[str] = field(default_factory=list)

    def sha256(self) -> str | None:
        """Hash of the weight file (``None`` for folders), memoised under :func:`cache_dir`."""
        if self.path is None or not self.path.is_file():
            return None
        return sha256_file(self.path, cache_dir())

    def manifest(self, sha256: str | None = None) -> dict[str, Any]:
        """The record kept in ``manifest.json`` (``sha256``: the hash when the caller already has it)."""
        return {
            "alias": self.alias,
            "source": self.source,
            "path": str(self.path) if self.path else None,
            "sha256": sha256 or self.sha256(),
            "licence": self.entry.get("licence"),
        }


class Registry:
    """Model aliases from every registry source.

    The sources are the root registry, plugins, ``$SATCORE_HOME/registry.yaml`` and ``$SATCORE_REGISTRY``.
    """

    def __init__(self, models: dict[str, dict[str, Any]], plugins: list[dict[str, Any]] | None = None,
                 origins: dict[str, str] | None = None, locate: WeightLocator | None = None) -> None:
        self.models = models
        self.plugins = list(plugins or [])  # the raw ``plugins:`` entries (see satcore.catalogue)
        self.origins = origins or {}
        self.locate = locate

    @classmethod
    def load(cls, extra_files: Iterable[Path] = (), plugin_aliases: bool | PluginAliases = True,
             locate: WeightLocator | None = None) -> Registry:
        """Merge the registries.

        Precedence: root < plugin aliases < user file < ``$SATCORE_REGISTRY`` < ``extra_files``.

        Args:
            extra_files: more registry files, highest precedence.
            plugin_aliases: ``(plugin, {alias: entry})`` pairs, first wins; ``True``: those of the process's
                plugin source (:func:`set_plugin_source`); ``False``: none.
            locate: a weight locator for library caches; default: the plugin source's (when
                ``plugin_aliases`` is ``True``).
        """
        models: dict[str, dict[str, Any]] = {}
        origins: dict[str, str] = {}
        root = builtin_registry_path()
        data = _read_yaml(root)
        plugins = list(data.get("plugins") or [])
        for alias, entry in (data.get("models") or {}).items():
            models[alias] = dict(entry)
            origins[alias] = "satcore"
        if plugin_aliases is True:
            source = _PLUGIN_SOURCE
            plugin_aliases = source.aliases() if source else ()
            locate = locate or (source.locate if source else None)
        for plugin, aliases in plugin_aliases or ():
            for alias, entry in aliases.items():
                if alias not in models:  # plugins never override the root registry
                    models[alias] = dict(entry)
                    origins[alias] = f"plugin {plugin}"
        user_files = [satcore_home() / "registry.yaml"]
        if os.environ.get("SATCORE_REGISTRY"):
            user_files.append(Path(os.environ["SATCORE_REGISTRY"]))
        for f in [*user_files, *extra_files]:
            if f.exists():
                for alias, entry in (_read_yaml(f).get("models") or {}).items():
                    base = models.get(entry.get("extends", "")) if isinstance(entry, dict) else None
                    merged = {**(base or {}), **(entry or {})}
                    merged.pop("extends", None)
                    models[alias] = merged
                    origins[alias] = str(f)
        return cls(models, plugins, origins, locate)

    def entry(self, alias: str) -> dict[str, Any]:
        """The entry of an alias, or a SpecError with close matches."""
        if alias in self.models:
            return self.models[alias]
        import difflib

        close = difflib.get_close_matches(alias, list(self.models), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise SpecError(f"unknown model alias {alias!r}{hint} (known: {', '.join(sorted(self.models))}); add "
                        f"your own in {satcore_home() / 'registry.yaml'} or give a checkpoint path")

    def search_places(self, alias: str, entry: dict[str, Any], explicit_path: str | None) -> list[str]:
        """The search order, as human-readable places."""
        places = []
        if explicit_path or entry.get("path"):
            places.append(f"explicit path: {explicit_path or entry.get('path')}")
        places.append(f"$SATCORE_MODELS/{alias}/: {models_dir() / alias}")
        if entry.get("hf_repo"):
            files = [n for n in (entry.get("filename"), *(entry.get("alternates") or [])) if n]
            places.append(f"Hugging Face cache: {hf_cache_dir()} (repo {entry['hf_repo']}"
                          + (f", file {' or '.join(files)}" if files else "") + ")")
        if entry.get("family") == "open_clip" and entry.get("pretrained") and not entry.get("hf_repo"):
            places.append(f"open_clip cache for pretrained tag {entry['pretrained']!r}")
        return places

    def resolve(self, alias: str, explicit_path: str | None = None) -> ResolvedModel:
        """Find the weights of ``alias`` by the search order; raise :class:`MissingWeightsError` if absent.

        ``alias`` may also be a path: a checkpoint file, or a training folder (source ``training-folder``,
        whose entry is :func:`~satcore.registry_folders.training_folder_model`'s; :class:`SpecError` when the
        training is not finished or holds no checkpoint).
        """
        bare = explicit_path is None and alias not in self.models and looks_like_path(alias)
        if bare and is_training_folder(alias):  # `model: runs/my-train`: its checkpoint, family and config
            entry = training_folder_model(alias)
            return ResolvedModel(alias, entry, Path(entry["path"]), "training-folder",
                                 [f"the training folder {entry['training_folder']}"])
        if bare:  # `model: /path/to/checkpoint.pt`: that file and nothing else
            explicit_path, entry = alias, {"family": "checkpoint"}
        else:
            entry = self.entry(alias)
        searched = self.search_places(alias, entry, explicit_path) if not bare else [f"the path {alias}"]
        # 1. explicit path
        path = explicit_path or entry.get("path")
        if path:
            p = Path(os.path.expandvars(os.path.expanduser(str(path))))
            if p.exists():
                return ResolvedModel(alias, entry, p, "explicit", searched)
            if bare:
                fix = (f"the checkpoint {p} given as `model:` does not exist; fix the path, or use a model "
                       "alias (`satcore models` lists them)")
            elif explicit_path:
                fix = f"the path {p} does not exist; fix the step's `weights:`"
            else:
                fix = f"the path {p} does not exist; fix the alias's `path:` ({self.origins.get(alias, '?')})"
            raise MissingWeightsError(alias, searched, fix)
        # 2. $SATCORE_MODELS/<alias>/
        d = models_dir() / alias
        found = _find_in_dir(d, entry)
        if found is not None:
            return ResolvedModel(alias, entry, found, "satcore-models", searched)
        # 3. library caches
        if entry.get("hf_repo"):
            names = [entry["filename"], *(entry.get("alternates") or [])] if entry.get("filename") else None
            hit = _find_in_hf_cache(entry["hf_repo"], names, entry.get("revision"))
            if hit is not None:
                return ResolvedModel(alias, entry, hit, "hf-cache", searched)
        other = self.locate(alias, entry) if self.locate else None
        if other:
            return ResolvedModel(alias, entry, Path(other), "library-cache", searched)
        raise MissingWeightsError(alias, searched, how_to_supply(alias, entry))


def how_to_supply(alias: str, entry: dict[str, Any], step_weights: bool = True) -> str:
    """Actionable instructions for putting an alias's weights in place.

    ``step_weights``: mention a step's ``weights:`` (wrong for weights a step needs indirectly, such as base
    weights: those get the alias's ``path:`` instead).
    """
    target = models_dir() / alias
    fname = entry.get("filename") or "<checkpoint file>"
    lines = [f"copy the weights to {target / Path(fname).name}"]
    if entry.get("hf_repo"):
        rev = f" --revision {entry['revision']}" if entry.get("revision") else ""
        lines.append(f"on a machine with internet: `hf download {entry['hf_repo']} {fname}{rev} --local-dir "
                     f"{target}` (or copy a populated Hugging Face cache)")
    elif entry.get("url"):
        lines.append(f"download {entry['url']} on a machine with internet and unpack it there")
    if step_weights:
        lines.append("or set `weights: /path/to/file` on the step")
    else:
        lines.append(f"or set `path: /path/to/file` on the {alias!r} alias in your registry.yaml")
    return "; ".join(lines)


def looks_like_path(s: str) -> bool:
    """Whether a model name is meant as a file or folder rather than an alias."""
    return "/" in s or s.endswith(WEIGHT_SUFFIXES) or s.startswith(("~", "."))


def _find_in_dir(d: Path, entry: dict[str, Any]) -> Path | None:
    if not d.is_dir():
        return None
    names: list[str | None] = [entry.get("filename"), *(entry.get("alternates") or [])]
    for n in names:
        if n and (d / Path(n).name).exists():
            return d / Path(n).name
        if n and (d / n).exists():
            return d / n
    if any((d / n).exists() for n in ("config.json", "open_clip_config.json", "model_index.json")):
        return d  # a model folder (transformers / diffusers / open_clip local-dir)
    files = sorted(f for f in d.rglob("*") if f.suffix in WEIGHT_SUFFIXES)
    return files[0] if len(files) == 1 else None


def _find_in_hf_cache(repo: str, filenames: list[str] | None, revision: str | None) -> Path | None:
    """The snapshot (``refs/<revision>`` first) holding one of ``filenames``, in order; None: any snapshot."""
    base = hf_cache_dir() / ("models--" + repo.replace("/", "--"))
    snaps = base / "snapshots"
    if not snaps.is_dir():
        return None
    ref = base / "refs" / (revision or "main")
    order = [snaps / ref.read_text().strip()] if ref.exists() else []
    order += sorted(p for p in snaps.iterdir() if p.is_dir() and p not in order)
    for snap in order:
        if filenames is None:
            if any(snap.iterdir()):
                return snap
            continue
        for name in filenames:
            if (snap / name).exists():
                return snap / name
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: expected a mapping with `models:` and `plugins:`")
    return data


@lru_cache(maxsize=1)
def _cached_registry() -> Registry:
    return Registry.load()


def clear_registry_cache() -> None:
    """Forget the cached registry; the next :func:`get_registry` re-reads it (test fixtures use this)."""
    _cached_registry.cache_clear()


def get_registry(refresh: bool = False) -> Registry:
    """The merged registry (cached per process; ``refresh=True`` re-reads the files)."""
    if refresh:
        _cached_registry.cache_clear()
    return _cached_registry()


def read_registry_file(path: Path) -> dict[str, Any]:
    """A registry file's mapping (``{}`` when absent); :class:`SpecError` when it is not valid YAML."""
    return _read_yaml(path)
