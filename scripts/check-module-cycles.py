#!/usr/bin/env python3
"""No crate's modules import each other in a circle (docs/ARCHITECTURE.md,
"Architecture invariants").

For each source folder given (e.g. `crates/crm-sim/src`), every path written
as `crate::a::b`, `super::a` or `self::a` in a module's non-test code (the
file up to its `#[cfg(test)]` tail) is an edge to the deepest module it
names; a path through a parent's `pub use child::Name` counts as an edge to
the child, so a re-export does not hide a dependency. Declaring a child
(`mod x;`) or naming it by a relative path (`x::item`, as a `mod.rs` routes
to its parts) is not an edge: a parent that uses its parts while they use
its shared types is not reported. Any strongly connected set of more than one module
is printed with its edges, and the exit status is 1.

Usage: scripts/check-module-cycles.py [-v] SRC_DIR...   (-v prints every edge)
"""
import os
import re
import sys
from collections import defaultdict


def modules(src):
    """Module path (a tuple) -> file, for every `.rs` file under `src`."""
    mods = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = tuple(os.path.relpath(path, src)[:-3].split(os.sep))
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mods[rel] = path
    return mods


def code_of(path):
    """A file's text before its `#[cfg(test)]` tail, without `//` comments."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if re.match(r"^#\[cfg\(test\)\]", line):
                break
            lines.append(line)
    return re.sub(r"//[^\n]*", "", "".join(lines))


def expand(tree):
    """`a::{b, c::{d}}` -> [[a, b], [a, c, d]] (whitespace removed)."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree.split("::")]
    prefix, rest = tree.split("{", 1)
    inner = rest[:-1]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        parts.append(cur)
    return [p for part in parts for p in expand(prefix + part)]


def paths_in(text):
    """Every `crate::`/`super::`/`self::` path, use trees expanded."""
    out = []
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+|::\{)", text):
        end = m.end()
        if text[m.start():end].endswith("{"):
            depth = 1
            while end < len(text) and depth:
                depth += text[end] == "{"
                depth -= text[end] == "}"
                end += 1
        out.extend(expand(text[m.start():end]))
    return [[seg for seg in p if seg] for p in out]


class Crate:
    def __init__(self, src):
        self.mods = modules(src)
        self._exports = {}

    def reexported(self, mod, name):
        """The child module `mod` re-exports `name` from, if any."""
        if mod not in self._exports:
            named, globs = {}, []
            text = code_of(self.mods[mod])
            for m in re.finditer(r"pub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
                for p in expand(m.group(1)):
                    p = [s for s in p if s]
                    if p and p[0] == "self":
                        p = p[1:]
                    if not p or mod + (p[0],) not in self.mods:
                        continue
                    child, last = mod + (p[0],), p[-1]
                    if last == "*":
                        globs.append(child)
                    else:
                        named[re.split(r"\bas\b", last)[-1]] = child
            self._exports[mod] = (named, globs)
        named, globs = self._exports[mod]
        if name in named:
            return named[name]
        item = r"pub\s+(?:async\s+)?(?:struct|enum|fn|type|trait|const|static|mod)\s+"
        for g in globs:
            if re.search(item + re.escape(name) + r"\b", code_of(self.mods[g])):
                return g
        return None

    def target(self, mod, path):
        """The module a path written in `mod` points into."""
        head, rest = path[0], path[1:]
        if head == "crate":
            base = ()
        elif head == "self":
            base = mod
        else:  # super
            base = mod[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        full = base + tuple(s for s in rest if s != "self")
        found = next((full[:k] for k in range(len(full), -1, -1) if full[:k] in self.mods), None)
        for _ in range(8):  # follow re-exports down to the defining child
            if found is None or len(full) <= len(found):
                break
            child = self.reexported(found, full[len(found)])
            if child is None:
                break
            full, found = child + full[len(found) + 1:], child
        return found

    def edges(self):
        edges = defaultdict(set)
        for mod, path in self.mods.items():
            for p in paths_in(code_of(path)):
                t = self.target(mod, p)
                if t is not None and t != mod:
                    edges[mod].add(t)
        return edges


def cycles(nodes, edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def main(argv):
    verbose = "-v" in argv
    dirs = [a for a in argv if a != "-v"]
    name = lambda m: "::".join(m) or "crate"
    failed = False
    for src in dirs:
        c = Crate(src)
        edges = c.edges()
        if verbose:
            for m in sorted(edges):
                for t in sorted(edges[m]):
                    print(f"{src}: {name(m)} -> {name(t)}")
        for comp in cycles(list(c.mods), edges):
            failed = True
            print(f"{src}: modules import each other in a circle: "
                  + ", ".join(sorted(name(m) for m in comp)))
            for m in sorted(comp):
                for t in sorted(edges[m]):
                    if t in comp:
                        print(f"    {name(m)} -> {name(t)}")
    if failed:
        print("move what both sides need into a module of its own that imports neither")
        return 1
    print(f"module imports: no circle in {len(dirs)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
