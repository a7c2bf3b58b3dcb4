#!/usr/bin/env python3
"""Checks that the engine's files import each other only downwards.

Reads every `use crate::...` of src/ (code under `#[cfg(test)]` / `#[cfg(loom)]` modules
left out), resolves each path to the file of the longest module it names, and checks:

  1. no import cycle between files (strongly connected components of more than one file);
  2. every import goes to a file of the same or a lower layer, per LAYERS below, which is the
     layering `src/docs/architecture.rs` describes.

Imports are `use crate::`, `use super::`, `use self::` and `use child_module::` paths, and
paths written out in code (`crate::table::chunk::range_len`).

Usage: .ci/layers.py [SRC_DIR] [--graph]. Exits 1 on a violation, printing each one.
"""
import os
import re
import sys

# The layers, bottom first: (name, module paths). A module path names a file (`table/state`)
# or, as a prefix, everything under it (`expr` is expr.rs and expr/*.rs); the longest match
# wins. `src/docs/architecture.rs` describes the same layering.
LAYERS = [
    ("foundation", ["error", "sync", "step", "schema", "expr", "docs"]),
    ("rows", ["table/chunk", "table/snapshot", "table/read", "table/kind", "table/lifecycle",
              "subscribe/update", "subscribe", "publish/columns", "flight/wire"]),
    ("table state", ["table/append", "table/blink", "table/ring", "table/keyed", "table/state",
                     "table/shared", "publish/rows", "publish/staging", "subscribe/listener",
                     "subscribe/queue", "subscribe/registry", "mirror", "durable",
                     "derive/op", "derive/agg", "derive/agg_text", "derive/bars", "derive/filter",
                     "derive/groups", "derive/last_by"]),
    ("graph", ["graph"]),
    ("handles", ["table", "subscribe/subscription", "publish", "engine", "derive"]),
    ("on the public API", ["publish/mtw", "flight", "kafka"]),
    ("root", ["lib", "test_util"]),
]

TEST_MOD = re.compile(
    r"^\s*#\[cfg\([^\]]*\b(test|loom)\b[^\]]*\)\]\s*\n(\s*#\[[^\]]*\]\s*\n)*"
    r"\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{",
    re.M,
)
USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([a-z_][a-z0-9_]*::[^;]+);", re.M)
# A path written out in code: `crate::table::chunk::range_len(..)`.
INLINE = re.compile(r"\bcrate((?:::[a-z_][a-z0-9_]*)+(?:::[A-Za-z_][A-Za-z0-9_]*)?)")
COMMENT = re.compile(r"//[^\n]*")


def read_sources(src):
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)[:-3]
                text = open(path, encoding="utf-8").read()
                m = TEST_MOD.search(text)
                files[rel] = text[: m.start()] if m else text
    return files


def paths(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s+", "", tree)
    m = re.match(r"^([^{]*)\{(.*)\}$", tree)
    if not m:
        return [re.sub(r"\bas\b.*$", "", tree)]
    head, body = m.groups()
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    if cur:
        parts.append(cur)
    return [p for part in parts for p in paths(head + part)]


def absolute(files, f, path):
    """Module path segments of a `use` path written in file `f`, or None for another
    crate's path. A bare first segment naming a child module of `f` is relative to `f`."""
    segs = [s for s in path.split("::") if s]
    here = [] if f == "lib" else f.split("/")
    if segs[0] not in ("crate", "self", "super"):
        child = "/".join(here + [segs[0]])
        return here + segs if child in files else None
    if segs[0] == "crate":
        return segs[1:]
    if segs[0] == "self":
        return here + segs[1:]
    parent = here[:-1]
    rest = segs[1:]
    while rest and rest[0] == "super":
        parent, rest = parent[:-1], rest[1:]
    return parent + rest


PUB_USE = re.compile(r"^\s*pub(?:\([^)]*\))?\s+use\s+([^;]+);", re.M)


def reexports(files):
    """Per file, the names its `pub use` lines re-export -> the path they come from."""
    out = {}
    for f, text in files.items():
        names = {}
        for m in PUB_USE.finditer(text):
            for p in paths(m.group(1)):
                segs = absolute(files, f, p) if "::" in p else None
                if segs:
                    names[segs[-1]] = segs
        out[f] = names
    return out


def target(files, segs, exports=None, depth=0):
    """The file defining what path `segs` names: the longest module it names, followed
    through that module's `pub use` re-exports."""
    segs = [s for s in segs if s != "self"]
    for k in range(len(segs), 0, -1):
        mod = "/".join(segs[:k])
        if mod in files:
            rest = segs[k:]
            via = exports and rest and exports[mod].get(rest[0])
            if via and depth < 8:
                return target(files, via + rest[1:], exports, depth + 1)
            return mod
    return "lib"


def layer(mod):
    """(rank, name) of the layer of module `mod`, or None."""
    best = None
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if mod == prefix or mod.startswith(prefix + "/"):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), rank, name)
    return best and best[1:]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else "src"
    files = read_sources(src)
    graph = {f: set() for f in files}
    uses = {f: set() for f in files}
    exports = reexports(files)
    for f, text in files.items():
        # A re-export is an import of the file it re-exports from; an import *through* a
        # re-export is resolved to the file that defines the name.
        found = [absolute(files, f, p) for m in USE.finditer(text) for p in paths(m.group(1))]
        found = [segs for segs in found if segs is not None]
        # Re-exported names: edges for the cycle check only (a module file may re-export
        # its children whatever their layer; its code may not use them).
        reexported = {tuple(v) for v in exports[f].values()}
        code = USE.sub("", COMMENT.sub("", text))
        found += [m.group(1).split("::")[1:] for m in INLINE.finditer(code)]
        for segs in found:
            t = target(files, segs, exports)
            if t != f:
                graph[f].add(t)
                if tuple(segs) not in reexported:
                    uses[f].add(t)
    if "--graph" in sys.argv:
        for f in sorted(graph):
            print(f"{f} -> {', '.join(sorted(graph[f]))}")

    bad = []
    for f in sorted(graph):
        lf = layer(f)
        if lf is None:
            bad.append(f"{f}.rs has no layer: add it to LAYERS in .ci/layers.py")
            continue
        for t in sorted(uses[f]):
            lt = layer(t)
            if lt is None:
                continue
            if lt[0] > lf[0]:
                bad.append(f"{f}.rs ({lf[1]}) imports {t}.rs ({lt[1]}), a higher layer")

    # Tarjan's strongly connected components, iteratively.
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        x = stack.pop()
                        on.discard(x)
                        comp.append(x)
                        if x == v:
                            break
                    comps.append(comp)
            elif w not in index:
                index[w] = low[w] = counter
                counter += 1
                stack.append(w)
                on.add(w)
                work.append((w, iter(sorted(graph[w]))))
            elif w in on:
                low[v] = min(low[v], index[w])
    cycles = [sorted(c) for c in comps if len(c) > 1]
    for c in cycles:
        bad.append("import cycle: " + " <-> ".join(f"{x}.rs" for x in c))

    for b in bad:
        print(b)
    in_cycles = sum(len(c) for c in cycles)
    print(f"{len(files)} files, {in_cycles} in {len(cycles)} import cycles, "
          f"{len(bad)} layering violations")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
