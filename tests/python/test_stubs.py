"""The type stubs (mess/__init__.pyi) describe the module as built: every public name, every method and
property, and each function's parameters (names, order, keyword-only) as pybind11 reports them."""

import ast
import inspect
import re
from pathlib import Path

import mess

STUB = Path(mess.__file__).with_name("__init__.pyi")


def stub_tree():
    return ast.parse(STUB.read_text())


def stub_parameters(fn: ast.FunctionDef):
    a = fn.args
    return [x.arg for x in a.posonlyargs + a.args if x.arg != "self"], [x.arg for x in a.kwonlyargs]


def bound_parameters(obj):
    """(positional, keyword-only) parameter names from pybind11's signature line."""
    first = obj.__doc__.splitlines()[0]
    inside = first[first.index("(") + 1:first.rindex(") ->")]
    names, keyword_only, positional = [], False, []
    for part in re.split(r",\s*(?![^\[]*\])", inside):
        part = part.strip()
        if part == "*":
            keyword_only, positional = True, names
            names = []
            continue
        name = part.split(":")[0].strip()
        if name != "self":
            names.append(name)
    return (positional, names) if keyword_only else (names, [])


def test_every_public_name_is_in_the_stubs():
    tree = stub_tree()
    declared = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    declared |= {t.id for n in tree.body if isinstance(n, ast.AnnAssign) for t in [n.target]}
    assert set(mess.__all__) <= declared, set(mess.__all__) - declared


def test_functions_and_methods_match_the_module():
    checked = 0
    for node in stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            assert stub_parameters(node) == bound_parameters(getattr(mess, node.name)), node.name
            checked += 1
        if not isinstance(node, ast.ClassDef) or node.name in ("Error", "UnknownIdError"):
            continue
        cls = getattr(mess, node.name)
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and not item.decorator_list:
                method = getattr(cls, item.name)
                if item.name in ("__len__", "__iter__", "__next__", "__getitem__"):
                    assert callable(method), f"{node.name}.{item.name}"
                    continue
                assert stub_parameters(item) == bound_parameters(method), f"{node.name}.{item.name}"
                checked += 1
            if isinstance(item, ast.AnnAssign):
                assert hasattr(cls, item.target.id), f"{node.name}.{item.target.id}"
        public = {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")}
        in_stub = {i.name for i in node.body if isinstance(i, ast.FunctionDef)} | {
            i.target.id for i in node.body if isinstance(i, ast.AnnAssign)}
        assert public <= in_stub, f"{node.name}: {public - in_stub} missing from the stubs"
    assert checked > 20
