"""The ``satcore`` command line.

A lazy click group: core commands import their machinery only when invoked, and plugin commands are looked
up (loading plugins) only when a command name is not a core one, so ``satcore --help`` loads no plugin and
no torch.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from satcore.errors import SatcoreError
from satcore.kinds import KIND_NAMES
from satcore.version import __version__

#: ``new-plugin --kind`` choices: detector (the default) first
SCAFFOLD_KINDS = ("detector", *(k for k in KIND_NAMES if k != "detector"))

CORE_COMMANDS = ("run", "validate", "plugins", "models", "schema", "report", "compare", "new-plugin")


class SafePath(click.Path):
    """``click.Path`` that says what is wrong with a NUL byte or an over-long name (exit 2).

    click's own check calls ``os.stat``, which raises for those instead of answering.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, after refusing what no file system accepts."""
        text = os.fsdecode(value) if isinstance(value, (str, bytes, os.PathLike)) else str(value)
        if "\0" in text:
            self.fail("the path contains a NUL byte (\\0), which no file name can hold", param, ctx)
        raw = text.encode("utf-8", "surrogatepass")  # about the bytes the OS gets (enough for a limit)
        if len(raw) > 4096 or any(len(part) > 255 for part in raw.split(b"/")):
            self.fail(f"the path is too long ({len(raw):,} bytes; at most 255 a name and 4,096 in all)",
                      param, ctx)
        return super().convert(value, param, ctx)


class LazyGroup(click.Group):
    """Core commands first; unknown names are looked up among plugin commands."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A core command, else a plugin command of that name (loading plugins), else ``None``."""
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        extra = click.Group()
        from satcore.plugins import get_plugin_manager

        get_plugin_manager().hook.satcore_register_commands(cli=extra)
        return extra.commands.get(cmd_name)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Point at plugin commands after the help text."""
        formatter.write_paragraph()
        formatter.write_text(
            "Plugins may add commands (e.g. `satcore train ...`); `satcore plugins` lists them.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="satcore")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """satcore: change detection, recognition, captioning and generation on satellite imagery."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _overrides(values: tuple[str, ...]) -> dict[str, Any]:
    from satcore.spec import parse_overrides

    return parse_overrides(values)


def _print_metrics(metrics: dict[str, Any] | None, ok: int | None = None, failed: int = 0,
                   errors: Path | None = None) -> None:
    """The run's metrics in a few lines (:func:`satcore.outputs.summary.summary_lines`)."""
    from satcore.outputs.summary import summary_lines

    for line in summary_lines(metrics, ok, failed, errors):
        click.echo(line)


@cli.command()
@click.argument("spec", type=SafePath(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a spec value by dotted path; steps by id: --set steps.change.threshold=0.4")
@click.option("--resume", is_flag=True, help="Continue the run in output.dir: finished items are skipped.")
@click.option("--overwrite", is_flag=True, help="Replace the outputs of an earlier run in output.dir.")
@click.option("--output", "output_dir", type=SafePath(file_okay=False),
              help="Override output.dir (a relative path is taken from the current directory; output.dir in "
              "the spec or in --set is relative to the spec file).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(spec: str, sets: tuple[str, ...], resume: bool, overwrite: bool, output_dir: str | None,
        quiet: bool) -> None:
    """Run the pipeline SPEC (a YAML file) and write results, metrics, maps and a report."""
    from satcore.engine import run_pipeline

    res = run_pipeline(spec, _overrides(sets), resume=resume, overwrite=overwrite, progress=not quiet,
                       output_dir=output_dir)
    click.echo(f"items: {res.items_ok} ok, {res.items_failed} failed"
               + (f", {res.items_skipped} skipped (already done)" if res.items_skipped else ""))
    out = res.output_dir
    _print_metrics(res.metrics, res.items_ok, res.items_failed if not res.items_skipped else 0,
                   out / "errors.jsonl")
    # only what exists: an unlabelled run writes no metrics.json, maps/ needs a per-pixel detector
    names = ("results.parquet", "metrics.json", "errors.jsonl", "manifest.json", "run.log", "maps/",
             "mosaic/", "artifacts/", "generated/", "report.html")
    click.echo(f"outputs in {out}/: " + ", ".join(n for n in names if (out / n.rstrip("/")).exists()))
    for note in res.notes:
        click.echo(f"note: {note}", err=True)
    if res.items_failed:
        click.echo(f"{res.items_failed} item(s) failed: see {out / 'errors.jsonl'}", err=True)


@cli.command()
@click.argument("spec", type=SafePath(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a spec value (as for run).")
def validate(spec: str, sets: tuple[str, ...]) -> None:
    """Check SPEC's keys, types and input chain without loading any model."""
    from satcore.spec import load_pipeline

    p = load_pipeline(spec, _overrides(sets))
    chain = " → ".join(
        [f"source ({p.source_cls.name})"] + [f"{s.id} ({s.type} ← {s.input})" for s in p.steps])
    click.echo(f"{spec}: valid. {chain}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their components, and plugins that failed to load."""
    from satcore.errors import PluginConflictError
    from satcore.kinds import KIND_HOOKS
    from satcore.plugins import get_plugin_manager

    pm = get_plugin_manager()
    try:
        cat = pm.catalogue()
    except PluginConflictError as exc:  # a component without a name: nothing can be listed
        clashes, cat = [str(exc)], {k: {} for k in KIND_HOOKS}
    else:
        clashes = pm.clash_messages()
    by_plugin: dict[str, dict[str, list[str]]] = {n: {} for n in pm.info}
    for kind, comps in cat.items():
        for name, cls in comps.items():
            by_plugin.setdefault(cls.plugin_name or "?", {}).setdefault(kind, []).append(name)
    for kind, clashing in pm.clashes.items():  # an ambiguous name shows under each plugin that registers it
        for name, classes in clashing.items():
            for c in classes:
                by_plugin.setdefault(c.plugin_name or "?", {}).setdefault(kind, []).append(f"{name} (clash)")
    if as_json:
        click.echo(json.dumps({
            "plugins": [{"name": n, "distribution": pm.info[n].distribution if n in pm.info else None,
                         "version": pm.info[n].version if n in pm.info else None, "components": by_plugin[n]}
                        for n in by_plugin],
            "failed": [{"name": e.name, "distribution": e.distribution, "error": str(e.exception)}
                       for e in pm.load_errors],
            "conflict": "; ".join(clashes) or None,
            "clashes": clashes,
        }, indent=2))
        return
    for n, kinds in by_plugin.items():
        info = pm.info.get(n)
        head = f"{n}" + (f" ({info.distribution} {info.version})" if info and info.distribution else "")
        click.echo(head)
        for kind, names in kinds.items():
            click.echo(f"  {kind + 's':12} {', '.join(sorted(names))}")
    for e in pm.load_errors:
        click.echo(f"FAILED {e.name}" + (f" ({e.distribution})" if e.distribution else "")
                   + f": {type(e.exception).__name__}: {e.exception}")
    for clash in clashes:
        click.echo(f"CONFLICT: {clash}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List model aliases, their licences, and whether weights are present locally."""
    from satcore.errors import MissingWeightsError
    from satcore.registry import get_registry

    reg = get_registry()

    def where(alias: str) -> str | None:
        try:
            found = reg.resolve(alias)
        except MissingWeightsError:
            return None
        return f"{found.source}: {found.path}"

    rows = []
    for alias, entry in sorted(reg.models.items()):
        at = where(alias)
        # weights loaded first, under another alias (GeoRSCLIP over OpenAI's): usable only when both are here
        base = (entry.get("load") or {}).get("base") if isinstance(entry.get("load"), dict) else None
        base_present = where(base) is not None if base else None
        rows.append({"alias": alias, "family": entry.get("family"), "licence": entry.get("licence"),
                     "present": at is not None, "where": at, "base": base, "base_present": base_present,
                     "ready": at is not None and base_present is not False,
                     "defined_by": reg.origins.get(alias)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        mark = "present" if r["present"] else "missing"
        if r["present"] and r["base_present"] is False:
            mark = f"present, but its base {r['base']} is missing"
        click.echo(f"{r['alias']:24} {str(r['family']):12} {str(r['licence'])[:28]:28} {mark}"
                   + (f"  ({r['where']})" if r["where"] else ""))
    from satcore.registry import models_dir

    click.echo(f"\nPut weights in {models_dir()}/<alias>/ (or set SATCORE_MODELS); see docs/models.md.")


@cli.command()
@click.option("--output", "-o", type=SafePath(dir_okay=False), help="Write to a file instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of pipeline specs, with the installed plugins' parameters."""
    from satcore.spec import pipeline_schema

    text = json.dumps(pipeline_schema(), indent=2)
    if output:
        Path(output).write_text(text + "\n")
    else:
        click.echo(text)


@cli.command()
@click.argument("run_dir", type=SafePath(file_okay=False, exists=True))
@click.option("--items", type=click.IntRange(min=0), default=None,
              help="Items the pictures and the map show, highest scores first (default: the spec's "
                   "output.report_items, 6).")
@click.option("--rebuild", is_flag=True, help="Rebuild every section (default: reuse those whose files are "
              "unchanged, from RUN_DIR/report_files/cache).")
@click.option("-v", "--verbose", is_flag=True, help="Say for every section whether it was reused or rebuilt, "
              "how long it took and why.")
def report(run_dir: str, items: int | None, rebuild: bool, verbose: bool) -> None:
    """Rebuild RUN_DIR/report.html from a finished run's files.

    Sections whose input files are unchanged are reused. A section that took 10 s or more to rebuild says so
    on stderr, with why (e.g. the first build, or which file changed); --verbose says it for every section.
    """
    from satcore.outputs.report import SLOW_S, build_report

    def echo(note: str, seconds: float) -> None:
        if verbose or seconds >= SLOW_S:
            click.echo(note, err=True)

    click.echo(str(build_report(run_dir, items=items, rebuild=rebuild, echo=echo)))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=SafePath(file_okay=False, exists=True))
@click.option("--metric", "metrics", multiple=True,
              type=click.Choice(["accuracy", "precision", "recall", "f1"]),
              help="Image metrics to show (repeat; default all four).")
@click.option("--html", "html_out", type=SafePath(dir_okay=False), help="Also write the table as HTML here.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(run_dirs: tuple[str, ...], metrics: tuple[str, ...], html_out: str | None, as_json: bool) -> None:
    """Compare finished runs (e.g. one per dataset): runs as columns, the average, baselines beside them."""
    from satcore.io import write_text
    from satcore.outputs.compare import DEFAULT_METRICS, compare_runs, render_html, render_text

    cmp = compare_runs(run_dirs, metrics or DEFAULT_METRICS)
    if html_out:
        write_text(Path(html_out), render_html(cmp))
    click.echo(json.dumps(cmp, indent=2) if as_json else render_text(cmp).rstrip("\n"))


@cli.command()
@click.option("--clear", is_flag=True, help="Delete everything listed (embeddings, hash memo); nothing else.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache(clear: bool, as_json: bool) -> None:
    """Show (or --clear) satcore's cache: embedding caches per model and the checkpoint-hash memo.

    The cache is $SATCORE_CACHE (default ~/.cache/satcore); weights in $SATCORE_MODELS are not touched.
    """
    import shutil

    from satcore.registry import cache_dir

    root = cache_dir()
    rows: list[dict[str, Any]] = []
    if root.is_dir():
        for top in sorted(root.iterdir()):
            parts = sorted(p for p in top.iterdir() if p.is_dir()) if top.is_dir() else []
            for part in parts or [top]:
                files = [f for f in part.rglob("*") if f.is_file()] if part.is_dir() else [part]
                what = part.relative_to(root).as_posix()
                try:
                    if (part / "about.json").is_file():  # written by the component that fills the folder
                        what = json.loads((part / "about.json").read_text())["what"]
                    elif part.name == "sha256.json":
                        what = f"checkpoint sha256 memo ({len(json.loads(part.read_text()))} files)"
                except (OSError, ValueError, KeyError, TypeError):
                    pass
                rows.append({"path": str(part), "what": what, "files": len(files),
                             "bytes": sum(f.stat().st_size for f in files)})
    total = sum(r["bytes"] for r in rows)
    if clear:
        for r in rows:
            path = Path(r["path"])
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    if as_json:
        click.echo(json.dumps({"dir": str(root), "entries": rows, "bytes": total, "cleared": clear},
                              indent=2))
        return
    if not rows:
        click.echo(f"{root}: empty")
        return
    for r in rows:
        click.echo(f"{_size(r['bytes']):>10} {r['files']:7d} files  {r['what']}")
    verb = "cleared" if clear else "in"
    click.echo(f"{_size(total):>10} {verb} {root}" + ("" if clear else "  (satcore cache --clear)"))


def _size(n: float) -> str:
    """Bytes as B, KiB, MiB or GiB."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@cli.command("new-plugin")
@click.argument("name")
@click.option("--kind", "kinds", type=click.Choice(SCAFFOLD_KINDS), multiple=True, default=("detector",),
              show_default=True, help="Component kind; repeat for several in one package (the first is "
              "called NAME, the others NAME-<kind>).")
@click.option("--dir", "directory", type=SafePath(file_okay=False), default=".", show_default=True,
              help="Where to create the package folder.")
@click.option("--into", type=SafePath(file_okay=False, exists=True), default=None,
              help="Add the kinds to this existing package (made by `new-plugin NAME`) instead of creating "
              "one; the components are called NAME-<kind>.")
def new_plugin(name: str, kinds: tuple[str, ...], directory: str, into: str | None) -> None:
    """Scaffold a plugin package NAME (pyproject with entry point, components, tests), or add kinds to one."""
    from satcore.scaffold import add_to_plugin, scaffold_plugin

    if into is not None:
        changed = add_to_plugin(name, kinds, into)
        click.echo(f"added {', '.join(kinds)} to {into} ({len(changed)} files written or changed)\n"
                   f"next: pip install -e {into} && pytest {into}/tests")
        return
    path = scaffold_plugin(name, kinds, Path(directory))
    click.echo(f"created {path}\nnext: pip install -e {path} && pytest {path}/tests")


# `satcore train NAME ...` (trainers from plugins, loaded only when `train` is used) and `satcore models add`
from satcore.training.cli import models_with_add, train  # noqa: E402  (click only; plugins load lazily)

CORE_COMMANDS = (*CORE_COMMANDS, "train")  # type: ignore[assignment]
cli.add_command(train)
cli.add_command(models_with_add(models))

def main(argv: list[str] | None = None) -> None:
    """Entry point: user-facing errors without traceback, exit codes 0/1/2."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(os.environ.get("SATCORE_DEBUG"))
    try:
        cli.main(args=argv, prog_name="satcore", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except SatcoreError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # the environment: a full disk, no permission (a bug shows with --debug)
        if debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted; rerun with --resume to continue", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
