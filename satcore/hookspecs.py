"""The hook specifications: the only place satcore's hooks are declared.

A plugin is a module (named by an entry point in the group ``satcore``) that implements some of these with
:data:`satcore.hookimpl`. Component hooks return **classes**, never instances: listing plugins must not build
a model or load weights; the engine builds instances from the validated spec.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from satcore.components import Captioner, Detector, Extractor, Generator, Recognizer, Source

hookspec = pluggy.HookspecMarker("satcore")
#: Marker for plugin hook implementations; plugins use it as ``@satcore.hookimpl`` (the same object).
#: Defined here, beside the specs, so code inside satcore need not import the ``satcore`` facade.
hookimpl = pluggy.HookimplMarker("satcore")


@hookspec
def satcore_register_sources() -> list[type[Source]]:
    """Return the source classes this plugin provides.

    A source lists items cheaply (:meth:`~satcore.components.Source.list_items`) and loads one at a time
    (:meth:`~satcore.components.Source.load`). Its ``name`` is the ``source.type`` of a pipeline spec.

    Returns:
        Source subclasses, each with a unique kebab-case ``name`` and a ``params_model``.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_extractors() -> list[type[Extractor]]:
    """Return the feature-extractor classes this plugin provides.

    An extractor turns each item of a batch into a ``dict`` of features (probabilities, embeddings, indices).

    Returns:
        Extractor subclasses, each with a unique kebab-case ``name`` (a step's ``type:``) and a
        ``params_model``.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_detectors() -> list[type[Detector]]:
    """Return the change-detector classes this plugin provides.

    A detector turns items or upstream features into one :class:`~satcore.components.Detection` per item and
    may be fitted once on the train split (``fittable = True``).

    Returns:
        Detector subclasses, each with a unique kebab-case ``name`` (a step's ``type:``) and a
        ``params_model``.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_captioners() -> list[type[Captioner]]:
    """Return the captioner classes this plugin provides (image → text).

    Returns:
        Captioner subclasses, each with a unique kebab-case ``name`` and a ``params_model``.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_recognizers() -> list[type[Recognizer]]:
    """Return the recognizer classes this plugin provides (image → labels with scores).

    Returns:
        Recognizer subclasses, each with a unique kebab-case ``name`` and a ``params_model``.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_generators() -> list[type[Generator]]:
    """Return the generator classes this plugin provides (text/image → image).

    Returns:
        Generator subclasses, each with a unique kebab-case ``name`` and a ``params_model``.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_model_aliases() -> dict[str, dict[str, Any]]:
    """Return model aliases this plugin adds to ``registry.yaml``'s ``models:``.

    Keys are alias names; values have the same fields as a ``models:`` entry (family, architecture,
    pretrained, hf_repo, filename, licence, ...). Entries in the user's registry override these; these never
    override the root ``registry.yaml``.

    Returns:
        A mapping alias → entry.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_commands(cli: click.Group) -> None:
    """Add commands to the ``satcore`` command line (e.g. ``satcore train cyclegan``).

    Called only when the command line needs the plugin commands (not for ``satcore --help`` of a core
    command), so import heavy libraries inside the command functions, not at module level.

    Args:
        cli: the top-level click group; add commands or groups with ``cli.add_command``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def satcore_locate_weights(alias: str, entry: dict[str, Any]) -> str | None:
    """Find already-downloaded weights for a model alias in a library's own cache.

    This is the last step of the one search order (explicit path → ``$SATCORE_MODELS/<alias>/`` → library
    caches). ``firstresult``: the first plugin that returns a path handles it. Must never download.

    Args:
        alias: the alias name.
        entry: its ``models:`` entry.

    Returns:
        A local file or folder path, or ``None`` if this plugin's cache does not have it.

    .. versionadded:: 0.1
    """


@hookspec
def satcore_register_train_commands(train: click.Group) -> None:
    """Add trainers to ``satcore train`` (e.g. ``satcore train cyclegan``).

    Build each with :func:`satcore.training.train_command`, which gives the common options (``CONFIG.yaml``,
    ``--output``, ``--resume``, ``--overwrite``, ``--set``) and writes the training folder through
    :class:`satcore.training.TrainingRun`. Every plugin gets its own call, so trainers of several plugins sit
    side by side; two plugins adding the same name are a conflict reported with both distributions, never a
    silent replacement. Called only when ``satcore train`` is used: import torch inside the command function.

    Args:
        train: the ``train`` group for this plugin's trainers; add them with ``train.add_command``.

    .. versionadded:: 0.1
    """
