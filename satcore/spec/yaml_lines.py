"""YAML loading that keeps the line of every key, refuses duplicate keys, says syntax errors in plain words.

PyYAML's own wording ("expected <block end>, but found '<block mapping start>'") names parser states, and
often the line after the mistake. :func:`load_yaml` translates the common mistakes (a tab, an indent that
fits no block, an unclosed bracket or quote, a missing colon) into a sentence, on the line where the fix
goes, with that line and a caret under the spot.

It is also bounded, so that a small hostile file cannot exhaust memory, time or the stack: at most
:data:`MAX_SPEC_BYTES` of text, :data:`MAX_DEPTH` levels of nesting and :data:`MAX_NODES` values once
aliases are expanded (a 432-byte "billion laughs" spec expands to 10⁹), no alias inside the node it names,
integers of at most :data:`MAX_INT_DIGITS` digits. Every limit is a :class:`SpecError` at the line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.reader import ReaderError

from satcore.errors import SpecError

#: Largest spec file read (bytes); specs are a few kB, this only stops a wrong file from filling memory.
MAX_SPEC_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and lists (aliases expanded); specs use about 5 levels.
MAX_DEPTH = 64
#: Most values (scalars, mappings, lists) in one document once aliases are expanded.
MAX_NODES = 100_000
#: Longest integer, in decimal digits (Python's own limit for turning text into an int).
MAX_INT_DIGITS = 4300

#: A key path inside the spec, e.g. ``("steps", 1, "threshold")``.
Loc = tuple[Any, ...]


def format_loc(loc: Loc) -> str:
    """``("steps", 1, "threshold")`` → ``steps[1].threshold``."""
    out = ""
    for part in loc:
        if not isinstance(part, int):  # a key that would break the line or run on is shown quoted, cut
            part = str(part)
            if not part.isprintable() or len(part) > 60:
                part = repr(part[:60]) + ("…" if len(part) > 60 else "")
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class SpecLimitError(yaml.MarkedYAMLError):  # type: ignore[misc]  # PyYAML has no type hints
    """A bound of :class:`BoundedLoader` was passed, or a scalar has no value (e.g. month 13)."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(None, None, problem, mark)


def _node_key(k: yaml.Node) -> Any:
    """A mapping key node's text (``None`` for a list or mapping used as a key: construction refuses it)."""
    return k.value if isinstance(k, yaml.ScalarNode) else None


class BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader with the bounds of this module, checked while composing (before any expansion).

    Every node's expanded size and depth are computed once, after its children (an alias reuses its
    anchor's), so the check costs one pass over the text however much the aliases would expand.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._open: list[str] = []                     # anchors whose node is being composed
        self._size: dict[int, tuple[int, int]] = {}    # id(node) → (values, depth) with aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, refusing cycles, depth and expanded size over the bounds."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise SpecLimitError(f"the alias *{event.anchor} is inside the node &{event.anchor} names "
                                     "(a cycle, which expands forever): refer to it from outside",
                                     event.start_mark)
            node: yaml.Node = super().compose_node(parent, index)
            size, depth = self._size[id(node)]
            if depth + self._depth > MAX_DEPTH:
                raise SpecLimitError(f"the alias *{event.anchor} nests values more than "
                                     f"{MAX_DEPTH} levels deep: flatten the spec", event.start_mark)
            return node
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SpecLimitError(f"values nested more than {MAX_DEPTH} levels deep: flatten the spec",
                                 event.start_mark)
        if anchor:
            self._open.append(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor:
                self._open.pop()
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [x for pair in node.value for x in pair]
        else:
            children = []
        sizes = [self._size[id(c)] for c in children]
        size = 1 + sum(s for s, _ in sizes)
        depth = 1 + max((d for _, d in sizes), default=0)
        if size > MAX_NODES:
            raise SpecLimitError(f"this value holds more than {MAX_NODES:,} values once its aliases (*name) "
                                 "are expanded: use fewer aliases or a smaller value", event.start_mark)
        self._size[id(node)] = (size, depth)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A scalar's value; one Python cannot make (month 13, a 5,000-digit integer) is a marked error."""
        try:
            value = super().construct_object(node, deep)
        except (ValueError, OverflowError) as exc:
            kind = str(node.tag).rsplit(":", 1)[-1]
            if kind == "int":  # the resolver matched its syntax: only Python's digit limit is left
                raise SpecLimitError(_TOO_LONG_INT, node.start_mark) from None
            shown = str(node.value)[:60]
            raise SpecLimitError(f"{shown!r} is not a valid {kind}: {_first_line(exc)}; quote it to keep it "
                                 "as text", node.start_mark) from None
        if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _INT_BITS:
            raise SpecLimitError(_TOO_LONG_INT, node.start_mark)
        return value


_TOO_LONG_INT = (f"an integer with more than {MAX_INT_DIGITS} digits: no setting needs one; quote it to keep "
                 "it as text")
#: bits of the largest integer with MAX_INT_DIGITS decimal digits (hex and binary are not bound by Python)
_INT_BITS = (10 ** MAX_INT_DIGITS - 1).bit_length()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def read_spec_text(path: Path, shown: str) -> str:
    """A spec file's text: UTF-8, at most :data:`MAX_SPEC_BYTES`.

    Raises:
        SpecError: the file is missing, a folder, unreadable, too large, or not UTF-8 (with the line).
    """
    try:
        if path.is_dir():
            raise SpecError(f"{shown}: is a folder, not a spec file: give the YAML file inside it")
        if not path.exists():
            raise SpecError(f"{shown}: spec file does not exist")
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"{shown}: {size:,} bytes; a spec is at most {MAX_SPEC_BYTES:,} bytes: is this "
                            "the right file?")
        with path.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"{shown}: cannot read the spec file: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL byte in the name
        raise SpecError(f"{shown!r}: not a usable file name: {exc}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{shown}: a spec is at most {MAX_SPEC_BYTES:,} bytes: is this the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"{shown}:{line}: not UTF-8: byte 0x{raw[exc.start]:02x} at column {col} is not "
                        "valid UTF-8 text; save the file as UTF-8") from None


def load_scalar(text: str) -> Any:
    """A ``--set`` value parsed as YAML within the same bounds (``yaml.YAMLError`` when it is not YAML).

    Raises:
        SpecLimitError: a bound was passed (a circular alias, deep nesting, a huge integer).
    """
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _node_lines(node: yaml.Node, loc: Loc, out: dict[Loc, int]) -> None:
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = _node_key(k)
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
            key = _node_key(k)
            line = k.start_mark.line + 1
            if isinstance(k, yaml.ScalarNode) and key != "<<":
                if key in first:
                    where = format_loc((*loc, key))
                    out.append(f"{filename}:{line} {where}: duplicate key {key!r:.80} (first on line "
                               f"{first[key]}); YAML would silently keep only the last one: remove or rename "
                               "one of them")
                else:
                    first[key] = line
            _duplicate_keys(v, (*loc, key), filename, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _duplicate_keys(v, (*loc, i), filename, out)


def load_yaml(text: str, filename: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML safely and within bounds, keeping the line of every key.

    Raises:
        SpecError: a syntax error (in plain words, with the line and a caret), duplicate keys (all of them),
            or a bound passed (size, nesting, aliases, integers).
    """
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"{filename}: a spec is at most {MAX_SPEC_BYTES:,} characters")
    loader: BoundedLoader | None = None
    try:
        loader = BoundedLoader(text)  # the reader checks every character here
        node = loader.get_single_node()
        dups: list[str] = []
        if node is not None:
            _duplicate_keys(node, (), filename, dups)
        if dups:
            raise SpecError(dups, filename)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise SpecError(describe_yaml_error(exc, text, filename)) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise SpecError(f"{filename}:{line}: not valid YAML: the character U+{ord(char):04X} is not allowed "
                        "in YAML text: remove it, or write it as an escape in a quoted string (\"\\x07\")"
                        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{filename}: not valid YAML: {_first_line(exc)}") from None
    finally:
        if loader is not None:
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
    if len(shown) > 100:  # a long line: the 100 characters around the spot
        cut = max(0, min(col - 50, len(shown) - 100))
        shown, col = shown[cut:cut + 100], col - cut
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
