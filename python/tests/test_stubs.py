"""The ``.pyi`` stubs match the compiled module, and every Python-visible item has a docstring."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import tickertable
from tickertable import _tickertable

STUB = Path(tickertable.__file__).with_name("_tickertable.pyi")


def stub_members() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    names.add(item.target.id)
            out[node.name] = names
            out[""].add(node.name)
        elif isinstance(node, ast.FunctionDef):
            out[""].add(node.name)
        elif isinstance(node, (ast.AnnAssign, ast.Assign)):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name):
                out[""].add(target.id)
    return out


def public(cls: type) -> set[str]:
    names = {n for n in vars(cls) if not n.startswith("_") or n in {"_poll"}}
    dunders = {"__enter__", "__exit__", "__iter__", "__next__", "__aiter__", "__anext__", "__len__"}
    return names | {n for n in vars(cls) if n in dunders}


def test_stubs_match_the_compiled_module() -> None:
    stubs = stub_members()
    module_names = {n for n in vars(_tickertable) if not n.startswith("_")}
    assert module_names <= stubs[""], module_names - stubs[""]
    for name in module_names:
        obj = getattr(_tickertable, name)
        if inspect.isclass(obj):
            missing = public(obj) - stubs[name]
            assert not missing, f"{name}: not in the stubs: {missing}"
            extra = {m for m in stubs[name] if not m.startswith("__")} - set(dir(obj))
            assert not extra, f"{name}: in the stubs only: {extra}"


def test_every_python_visible_item_has_a_docstring() -> None:
    for name in tickertable.__all__:
        obj = getattr(tickertable, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        assert obj.__doc__, name
        if inspect.isclass(obj) and obj.__module__.startswith("tickertable") and not issubclass(obj, BaseException):
            for member, value in vars(obj).items():
                if member.startswith("_") and member not in {"__enter__", "__exit__", "__next__"}:
                    continue
                assert getattr(value, "__doc__", None), f"{name}.{member}"
