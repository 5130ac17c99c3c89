"""The step graph: which steps feed which, a run order, cycles, and what lies up- or downstream.

Edges are ``step id → its input ids``; ``source`` is the root and never a node of its own. An input may name
a step defined later in the file: steps then run in a topological order that keeps the file's order
wherever the inputs allow it, so a spec without such forward references runs exactly in file order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SOURCE = "source"


def run_order(ids: Sequence[str], inputs: Mapping[str, Sequence[str]]) -> list[str]:
    """``ids`` in a topological order, the file's order kept wherever the inputs allow it.

    Inputs that are not in ``ids`` (``source``, missing steps) are ignored; steps on a cycle are appended in
    file order at the end (the cycle itself is reported by :func:`find_cycle`).
    """
    known = set(ids)
    done: list[str] = []
    placed: set[str] = set()
    left = list(ids)
    while left:
        for i, sid in enumerate(left):
            if all(d in placed or d not in known or d == sid for d in inputs.get(sid, ())):
                done.append(sid)
                placed.add(sid)
                del left[i]
                break
        else:  # only steps on (or behind) a cycle are left
            done.extend(left)
            break
    return done


def find_cycle(ids: Sequence[str], inputs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """The first cycle, as the path of step ids back to its start (``['a', 'b', 'a']``), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(sid: str) -> list[str] | None:
        state[sid] = 1
        path.append(sid)
        for dep in inputs.get(sid, ()):
            if dep not in inputs:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        path.pop()
        state[sid] = 2
        return None

    for sid in ids:
        if sid not in state:
            found = visit(sid)
            if found:
                # read in the direction data flows: input → … → consumer
                return list(reversed(found))
    return None


def ancestors(inputs: Mapping[str, Sequence[str]], step_id: str) -> set[str]:
    """Every step ``step_id`` reads from, directly or through others (``source`` not included)."""
    out: set[str] = set()
    todo = [d for d in inputs.get(step_id, ()) if d in inputs]
    while todo:
        sid = todo.pop()
        if sid not in out:
            out.add(sid)
            todo.extend(d for d in inputs.get(sid, ()) if d in inputs)
    return out


def dependants(inputs: Mapping[str, Sequence[str]], step_id: str) -> set[str]:
    """Every step that reads ``step_id``'s outputs, directly or through others."""
    out: set[str] = set()
    todo = [step_id]
    while todo:
        cur = todo.pop()
        for sid, deps in inputs.items():
            if cur in deps and sid not in out:
                out.add(sid)
                todo.append(sid)
    return out
