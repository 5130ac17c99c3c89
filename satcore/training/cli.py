"""``satcore train <name>`` (subcommands from plugins), :func:`train_command`, and ``satcore models add``.

Imported by ``satcore/cli.py`` at start-up, so only click is imported at module level: plugins are loaded
when ``satcore train`` itself is used, never for ``satcore --help``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import click

from satcore.errors import PluginConflictError, RunStopped, SatcoreError, SpecError

__all__ = ["TrainGroup", "models_add", "models_with_add", "train", "train_command"]

_Found = dict[str, list[tuple[click.Command, str, "str | None"]]]


class TrainGroup(click.Group):
    """The ``train`` group: its subcommands are collected from every plugin, each attributed to its plugin.

    A name added by two plugins is listed as a conflict and refused when used (naming both distributions),
    never silently replaced. Plugins that still add a ``train`` group through ``satcore_register_commands``
    have its subcommands merged here, as the core group would otherwise hide theirs.
    """

    def collect(self) -> tuple[_Found, list[str]]:
        """``name → [(command, plugin, distribution), ...]`` and the hook failures, from every plugin."""
        from satcore.plugins import get_plugin_manager

        pm = get_plugin_manager()
        found: _Found = {}
        problems: list[str] = []
        hooks = [(impl, False) for impl in pm.hook.satcore_register_train_commands.get_hookimpls()]
        hooks += [(impl, True) for impl in pm.hook.satcore_register_commands.get_hookimpls()]
        for impl, legacy in hooks:
            info = pm.info.get(impl.plugin_name)
            dist = info.distribution if info else None
            scratch = click.Group("satcore" if legacy else "train")
            try:
                impl.function(*(scratch for _ in impl.argnames))
            except Exception as exc:  # one broken plugin must not hide the others' trainers
                problems.append(f"plugin {impl.plugin_name!r} ({dist or 'unknown distribution'}) failed to "
                                f"add train commands: {type(exc).__name__}: {exc}")
                continue
            cmds = scratch.commands
            if legacy:
                sub = cmds.get("train")
                cmds = sub.commands if isinstance(sub, click.Group) else {}
            for name, cmd in cmds.items():
                have = found.setdefault(name, [])
                if any(p == impl.plugin_name for _, p, _ in have):
                    continue  # the same plugin through both hooks
                cmd.satcore_plugin = impl.plugin_name  # type: ignore[attr-defined]
                cmd.satcore_distribution = dist  # type: ignore[attr-defined]
                have.append((cmd, impl.plugin_name, dist))
        return found, problems

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every trainer name plugins add (conflicting ones included)."""
        return sorted(self.collect()[0])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The trainer ``cmd_name``; :class:`PluginConflictError` when two plugins add it."""
        entries = self.collect()[0].get(cmd_name)
        if not entries:
            return None
        if len(entries) > 1:
            who = " and ".join(f"{p!r} ({d or 'unknown distribution'})" for _, p, d in entries)
            raise PluginConflictError(
                f"two plugins add `satcore train {cmd_name}`: {who}; uninstall or disable one "
                f"(SATCORE_DISABLE_PLUGINS={entries[-1][1]})")
        return entries[0][0]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The trainers with their plugin; conflicts and failed plugins after them."""
        found, problems = self.collect()
        rows = [(n, f"{e[0][0].get_short_help_str(limit=formatter.width - 30)} [{e[0][2] or e[0][1]}]")
                for n, e in sorted(found.items()) if len(e) == 1]
        if rows:
            with formatter.section("Trainers (from plugins)"):
                formatter.write_dl(rows)
        else:
            formatter.write_paragraph()
            formatter.write_text("No trainer is installed: plugins add them (docs/training.md).")
        clashes = [(n, "added by " + " and ".join(d or p for _, p, d in e) + ": uninstall or disable one")
                   for n, e in sorted(found.items()) if len(e) > 1]
        if clashes:
            with formatter.section("Conflicts"):
                formatter.write_dl(clashes)
        for p in problems:
            formatter.write_paragraph()
            formatter.write_text(f"FAILED {p}")


@click.group("train", cls=TrainGroup)
def train() -> None:
    """Train a model with a plugin's trainer; writes a resumable training folder.

    Every trainer takes the same options: satcore train NAME CONFIG.yaml --output DIR [--resume | --overwrite]
    [--set KEY=VALUE]. The folder holds train.json, losses.jsonl, checkpoints/ and report.html; use it as
    `model: DIR` in a pipeline spec, or register it with `satcore models add ALIAS DIR`. Exit codes: 0 done, 1
    stopped (rerun with --resume), 2 usage or config error.
    """


def train_command(name: str, *, config_model: type[Any] | None = None, checkpoint_suffix: str = ".pt",
                  keep_checkpoints: int | None = None,
                  help: str | None = None) -> Callable[[Callable[..., Any]], click.Command]:
    """Turn ``fn(run, **options)`` into the ``satcore train <name>`` command with the common options.

    The command reads ``CONFIG.yaml`` with ``--set`` overrides, validates it with ``config_model`` (a
    pydantic model; the instance is ``run.params``), opens the folder (``--output``, ``--resume``,
    ``--overwrite``, ``--seed``, ``--quiet``) and calls ``fn(run)`` inside it. Returning finishes the run as
    ``complete`` (exit 0); an exception finishes it as ``stopped`` (exit 1, or 2 for a config error).
    Extra ``@click.option`` decorators (above or below this one) are passed to ``fn`` as keyword arguments.

    Args:
        name: the subcommand name.
        config_model: optional pydantic model of the config.
        checkpoint_suffix: suffix of checkpoint files (``.pt``, ``.npz``, ...).
        keep_checkpoints: keep only the newest N checkpoints.
        help: the command's help (default: ``fn``'s docstring).

    Returns:
        A decorator producing a :class:`click.Command`; add it in
        :func:`~satcore.hookspecs.satcore_register_train_commands` with ``train.add_command``.
    """

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @click.command(name, help=help or fn.__doc__,
                       context_settings={"help_option_names": ["-h", "--help"]})
        @click.argument("config", type=click.Path(dir_okay=False))
        @click.option("--output", "-o", "output_dir", required=True, type=click.Path(file_okay=False),
                      help="The training folder (created; must be empty unless --resume or --overwrite).")
        @click.option("--resume", is_flag=True, help="Continue the training in --output from its last "
                      "checkpoint (same config required).")
        @click.option("--overwrite", is_flag=True, help="Replace an earlier training folder in --output.")
        @click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                      help="Override a config value by dotted path: --set optimizer.lr=0.001")
        @click.option("--seed", type=int, default=None, help="Random seed (default: the config's `seed`, "
                      "else 0).")
        @click.option("--quiet", is_flag=True, help="No progress bar.")
        def command(config: str, output_dir: str, resume: bool, overwrite: bool, sets: tuple[str, ...],
                    seed: int | None, quiet: bool, **options: Any) -> None:
            dist = getattr(click.get_current_context().command, "satcore_distribution", None)
            _run_trainer(fn, name, config, output_dir, resume=resume, overwrite=overwrite, sets=sets,
                         seed=seed, quiet=quiet, options=options, config_model=config_model,
                         checkpoint_suffix=checkpoint_suffix, keep_checkpoints=keep_checkpoints,
                         distribution=dist)

        # `@click.option`s below this decorator (on ``fn``) count as well as those above it
        command.params.extend(reversed(getattr(fn, "__click_params__", [])))
        return command

    return decorate


def _run_trainer(fn: Callable[..., Any], name: str, config: str, output_dir: str, *, resume: bool,
                 overwrite: bool, sets: tuple[str, ...], seed: int | None, quiet: bool,
                 options: dict[str, Any], config_model: type[Any] | None, checkpoint_suffix: str,
                 keep_checkpoints: int | None, distribution: str | None) -> None:
    from satcore.training.config import load_config
    from satcore.training.run import TrainingRun

    cfg = load_config(config, sets)
    params = _validate(config_model, cfg, config) if config_model is not None else None
    versions = {}
    if distribution:
        from importlib import metadata

        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[distribution] = metadata.version(distribution)
    run = TrainingRun.open(output_dir, cfg, name=name, resume=resume, overwrite=overwrite, seed=seed,
                           versions=versions, checkpoint_suffix=checkpoint_suffix,
                           keep_checkpoints=keep_checkpoints, quiet=quiet)
    run.params = params
    if run.resumed_from is not None:
        click.echo(f"resuming {name} in {run.dir} after step {run.start_step}", err=True)
    try:
        fn(run, **options)
    except KeyboardInterrupt:
        run.finish("stopped", error="interrupted")
        raise
    except SatcoreError as exc:
        run.finish("stopped", error=str(exc))
        raise
    except Exception as exc:
        run.finish("stopped", error=f"{type(exc).__name__}: {exc}")
        ckpt = run.latest_checkpoint()
        kept = f"it keeps the checkpoint of step {ckpt.step}" if ckpt else "no checkpoint was saved"
        raise RunStopped(f"training {name!r} stopped: {type(exc).__name__}: {exc}. {run.dir}: {kept}; fix "
                         "the cause and rerun with --resume (--debug shows the traceback)") from exc
    if not run.finished:
        run.finish("complete")
    if run.status != "complete":
        raise RunStopped(f"training {name!r} stopped ({run.info.get('error') or 'by the trainer'}); see "
                         f"{run.dir / 'report.html'}")
    click.echo(f"training {name!r} complete after step {run.info.get('last_step')}: {run.dir}/ holds "
               "train.json, losses.jsonl, checkpoints/, report.html")
    click.echo(f"use it as `model: {run.dir}` in a pipeline spec, or `satcore models add ALIAS {run.dir}`")


def _validate(model: type[Any], cfg: dict[str, Any], path: str) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(cfg)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}" for e in exc.errors()]
        raise SpecError(problems, source=path) from exc


@click.command("add")
@click.argument("alias")
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("--force", is_flag=True, help="Replace an existing alias of that name.")
def models_add(alias: str, folder: str, force: bool) -> None:
    """Register the finished training FOLDER as model ALIAS in your registry.yaml.

    The file is $SATCORE_REGISTRY, else $SATCORE_HOME/registry.yaml (default ~/.config/satcore/registry.yaml);
    its comments and other aliases are kept, and the previous version is saved as registry.yaml.bak.
    """
    from satcore.training.models import add_model_alias

    path = add_model_alias(alias, folder, force=force)
    click.echo(f"added model alias {alias!r} → {folder} in {path}")


def models_with_add(list_command: click.Command) -> click.Group:
    """``models`` as a group: without a subcommand it lists the aliases as before; ``add`` registers one."""

    def callback(**kwargs: Any) -> Any:
        ctx = click.get_current_context()
        if ctx.invoked_subcommand is None and list_command.callback is not None:
            return ctx.invoke(list_command.callback, **kwargs)
        return None

    group = click.Group(list_command.name, params=list_command.params, callback=callback,
                        help=list_command.help, short_help=list_command.short_help,
                        invoke_without_command=True)
    group.add_command(models_add)
    return group
