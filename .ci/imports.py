#!/usr/bin/env python3
"""The import structure of tower-pop/src: no circle, no import through the crate root.

Rooms are the files at the root of src/ and its folders (dpop/, jose/, ...); inside a folder,
its files. An arrow A -> B is a `crate::b::...` (or `super::b`) path in A's code (not its
comments or tests). The check fails when the rooms of one level import each other in a circle (then some
arrow runs back up), or when a module reaches a name through the crate root (`crate::Name`,
or a module the root re-exports, such as `crate::nonce`) instead of the module that owns it.

Usage: python3 .ci/imports.py [SRC]   (default tower-pop/src; prints the floors, exits 1 on a fault)
"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else "tower-pop/src")
# Modules the crate root re-exports under another path (`pub use token::discovery;`, ...).
ROOT_ALIASES = {"discovery", "introspection", "nonce", "thumbprint", "tls"}
PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def module_of(path: Path) -> list[str]:
    """The module path of a source file, e.g. dpop/proof.rs -> ["dpop", "proof"]."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return [] if parts == ["lib"] else parts


def room(module: list[str], depth: int) -> str:
    return "/".join(module[:depth]) if module else "lib"


def code_of(text: str) -> str:
    """The code: without `#[cfg(test)] mod tests { ... }` (tests may reach anything) and without
    comments (a doc link may point anywhere, as a reader's pointer, not an import)."""
    at = text.find("#[cfg(test)]\nmod tests")
    text = text if at < 0 else text[:at]
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def main() -> int:
    files = {tuple(module_of(p)): p for p in sorted(SRC.rglob("*.rs"))}
    faults = []
    # Level 1: the root's files and its folders; level 2: the files of one folder (its mod.rs
    # as "<folder>/mod").
    edges: dict[int, dict[str, set[str]]] = {1: {}, 2: {}}
    for module, path in files.items():
        for match in PATH.finditer(code_of(path.read_text())):
            base, rest = match.group(1), match.group(2).split("::")[1:]
            target = (list(module[:-1]) if base == "super" else []) + rest
            if base == "crate" and module and (rest[0][0].isupper() or rest[0] in ROOT_ALIASES):
                faults.append(f"{path}: `crate::{'::'.join(rest)}` reaches through the crate root")
                continue
            owner = next((tuple(target[:n]) for n in range(len(target), 0, -1)
                          if tuple(target[:n]) in files), None)
            if owner is None:
                continue
            a, b = (module[0] if module else "lib"), owner[0]
            if a != b:
                edges[1].setdefault(a, set()).add(b)
            elif module and len(module) <= 2 and len(owner) <= 2:
                a2 = "/".join(module) if len(module) == 2 else f"{a}/mod"
                b2 = "/".join(owner) if len(owner) == 2 else f"{b}/mod"
                if a2 != b2:
                    edges[2].setdefault(a2, set()).add(b2)
    for depth, graph in edges.items():
        cycle = find_cycle(graph)
        if cycle:
            faults.append(f"a circle of rooms (level {depth}): {' -> '.join(cycle)}")
    for name, floor in sorted(floors_of(edges[1]).items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"floor {floor:2}  {name}")
    for fault in faults:
        print(f"FAULT {fault}")
    arrows = sum(len(v) for v in edges[1].values())
    print(f"{len(files)} files, {arrows} arrows between rooms, {len(faults)} faults")
    return 1 if faults else 0


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def floors_of(graph: dict[str, set[str]]) -> dict[str, int]:
    """Floor 1 imports nothing; every room stands one above the highest it imports."""
    nodes = set(graph) | {b for bs in graph.values() for b in bs}
    floor: dict[str, int] = {}

    def of(node: str, seen: frozenset = frozenset()) -> int:
        if node in floor:
            return floor[node]
        if node in seen:
            return 0
        below = [of(b, seen | {node}) for b in graph.get(node, ())]
        floor[node] = 1 + max(below, default=0)
        return floor[node]

    for node in nodes:
        of(node)
    return floor


if __name__ == "__main__":
    sys.exit(main())
