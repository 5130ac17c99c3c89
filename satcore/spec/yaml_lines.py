"""YAML loading that keeps the line of every key, refuses duplicate keys, says syntax errors in plain words.

PyYAML's own wording ("expected <block end>, but found '<block mapping start>'") names parser states, and
often the line after the mistake. :func:`load_yaml` translates the common mistakes (a tab, an indent that
fits no block, an unclosed bracket or quote, a missing colon) into a sentence, on the line where the fix
goes, with that line and a caret under the spot.
"""

from __future__ import annotations

from typing import Any

import yaml

from satcore.errors import SpecError

#: A key path inside the spec, e.g. ``("steps", 1, "threshold")``.
Loc = tuple[Any, ...]


def format_loc(loc: Loc) -> str:
    """``("steps", 1, "threshold")`` → ``steps[1].threshold``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*loc, key)] = k.start_mark.line + 1
            _node_lines(v, (*loc, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _node_lines(v, (*loc, i), out)


def _duplicate_keys(node: yaml.Node, loc: Loc, filename: str, out: list[str]) -> None:
    """Every key given twice in one mapping (YAML would silently keep the last)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for k, v in node.value:
            key = k.value
            line = k.start_mark.line + 1
            if isinstance(k, yaml.ScalarNode) and key != "<<":
                if key in first:
                    where = format_loc((*loc, key))
                    out.append(f"{filename}:{line} {where}: duplicate key {key!r} (first on line "
                               f"{first[key]}); YAML would silently keep only the last one: remove or rename "
                               "one of them")
                else:
                    first[key] = line
            _duplicate_keys(v, (*loc, key), filename, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _duplicate_keys(v, (*loc, i), filename, out)


def load_yaml(text: str, filename: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML safely, keeping the line of every key.

    Raises:
        SpecError: a syntax error (in plain words, with the line and a caret) or duplicate keys (all of them).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        dups: list[str] = []
        if node is not None:
            _duplicate_keys(node, (), filename, dups)
        if dups:
            raise SpecError(dups, filename)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(describe_yaml_error(exc, text, filename)) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{filename}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _node_lines(node, (), lines)
    return data, lines


def describe_yaml_error(exc: yaml.MarkedYAMLError, text: str, filename: str) -> str:
    """``file:line: not valid YAML: <what is wrong, in words>`` plus the line and a caret."""
    src = text.splitlines()
    problem = str(exc.problem or "")
    context = str(exc.context or "")
    mark = exc.problem_mark
    line, col = (mark.line, mark.column) if mark else (0, 0)
    ctx = exc.context_mark

    def prev_line(n: int) -> int | None:
        """The last non-blank, non-comment line before line index ``n``."""
        for j in range(n - 1, -1, -1):
            if j < len(src) and src[j].strip() and not src[j].lstrip().startswith("#"):
                return j
        return None

    def indent(j: int) -> int:
        return len(src[j]) - len(src[j].lstrip(" ")) if j < len(src) else 0

    if "'\\t'" in problem or "\t" in problem:
        msg = "a tab character; YAML indents with spaces only: replace the tab with spaces"
    elif "quoted scalar" in context and ctx is not None:
        quote = src[ctx.line][ctx.column] if ctx.line < len(src) and ctx.column < len(src[ctx.line]) else '"'
        line, col = ctx.line, ctx.column
        msg = f"the quote {quote} opened here is never closed: add the closing {quote} on this line"
    elif ("flow sequence" in context or "flow mapping" in context) and ctx is not None:
        opener, closer, what = ("[", "]", "list") if "sequence" in context else ("{", "}", "mapping")
        line, col = ctx.line, ctx.column
        msg = (f"the {opener} opened here is not closed: add {closer} at the end of the {what}, or quote a "
               f"value that contains ':', ',' or brackets")
    elif "<stream end>" in problem and _unclosed(src) is not None:
        line, col = _unclosed(src) or (0, 0)
        opener = src[line][col]
        msg = f"the {opener} opened here is never closed: add {'}' if opener == '{' else ']'} where it ends"
    elif "simple key" in context and ctx is not None:
        line, col = ctx.line, ctx.column
        msg = "this line has no colon: write `key: value` (a space after the colon)"
    elif problem.startswith("mapping values are not allowed"):
        j = prev_line(line)
        if j is not None and ":" not in src[j] and not src[j].lstrip().startswith("-"):
            line, col = j, indent(j)
            msg = "this line has no colon: write `key: value` (a space after the colon)"
        elif j is not None and indent(line) > indent(j):
            msg = (f"this line is indented more than line {j + 1}, which already has a value: indent it "
                   f"like line {j + 1}, or quote a value that contains ': '")
        else:
            msg = "a ': ' inside a value: put the value in quotes (e.g. name: \"a: b\")"
    elif problem.startswith("expected <block end>"):
        start = f" that starts on line {ctx.line + 1}" if ctx is not None else ""
        msg = (f"this line's indentation does not fit the block{start}: indent the keys of one mapping, "
               "and the `-` items of one list, by the same number of spaces")
    else:
        msg = problem or context or str(exc)
    shown = src[line] if 0 <= line < len(src) else ""
    caret = f"\n    {shown}\n    {' ' * min(col, len(shown))}^" if shown.strip() else ""
    return f"{filename}:{line + 1}: not valid YAML: {msg}{caret}"


def _unclosed(src: list[str]) -> tuple[int, int] | None:
    """Line and column of the last ``[`` or ``{`` still open at the end (quotes and comments skipped)."""
    stack: list[tuple[int, int]] = []
    for i, text in enumerate(src):
        quote = ""
        for j, ch in enumerate(text):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "\"'":
                quote = ch
            elif ch == "#" and (j == 0 or text[j - 1] == " "):
                break
            elif ch in "[{":
                stack.append((i, j))
            elif ch in "]}" and stack:
                stack.pop()
    return stack[-1] if stack else None
