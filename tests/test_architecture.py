"""The import graph of ``src/microisp_cli`` as docs/architecture.md describes it, read with ``ast``.

Counted: every ``import``/``from ... import`` of a microisp module, at module level, inside
functions (a *lazy* import) and under ``if TYPE_CHECKING:`` (an annotation still ties the two
modules: a circle through it is a circle). ``from PKG import name`` counts as importing
``PKG.name`` when that is a module, else ``PKG``. Not counted: the implicit import of parent
packages, and the by-name imports of ``importlib.import_module`` (the package's ``__getattr__``,
``cli/main.py``'s commands).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "microisp_cli"



def _modules() -> dict[str, Path]:
    names = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


MODULES = _modules()


def _type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (the imports of type annotations, not run, but counted as lazy)."""
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(name: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, lazy, line) for every import of a microisp module in ``name``."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or _type_checking_only(child) \
                or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, inner, child.lineno) for a in child.names
                             if a.name.split(".")[0] == PACKAGE)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source.split(".")[0] != PACKAGE:
                    continue
                for alias in child.names:
                    target = f"{source}.{alias.name}"
                    found.append((target if target in MODULES else source, inner, child.lineno))
            visit(child, inner)

    visit(tree, False)
    return found


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _graph(lazy: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, found in IMPORTS.items():
        for target, is_lazy, _ in found:
            assert target in MODULES, f"{name} imports {target}, which is not a module of {PACKAGE}"
            if target != name and (lazy or not is_lazy):
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


def test_the_parser_sees_the_known_imports():
    """The checks below are only as good as the parser: spot-check the three kinds of import."""
    assert ("microisp_cli.publish", True) in {(t, lazy) for t, lazy, _ in IMPORTS["microisp_cli.encode"]}
    assert ("microisp_cli.model", True) in {(t, lazy) for t, lazy, _ in IMPORTS["microisp_cli.runtimes"]}
    assert ("microisp_cli.model", False) in {(t, lazy) for t, lazy, _ in IMPORTS["microisp_cli.weights"]}
    develop = {t for t, lazy, _ in IMPORTS["microisp_cli.develop"] if not lazy}
    assert {"microisp_cli.stages", "microisp_cli.encode", "microisp_cli.runtimes.base"} <= develop


def test_no_import_circle_at_module_level():
    assert _cycles(_graph(lazy=False)) == []


def test_no_import_circle_through_lazy_or_type_checking_imports():
    assert _cycles(_graph(lazy=True)) == []


def test_runtimes_take_config_and_parameters_not_weights():
    offenders = [(name, line) for name, found in IMPORTS.items()
                 if name.startswith(f"{PACKAGE}.runtimes") for t, _, line in found
                 if t == f"{PACKAGE}.weights"]
    assert offenders == []


def _third_party_imports(path: Path) -> set[str]:
    """Top-level names of the packages ``path`` imports, including ``extras.require("pkg...")``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value).split(".")[0])
    return names


@pytest.mark.parametrize("package,owners", [
    ("tensorflow", {"microisp_cli.tensorflow_import"}),
    ("rawpy", {"microisp_cli.camera_raw", "microisp_cli.peers"}),
    ("click", {"microisp_cli.cli"}),
])
def test_one_home_for_each_heavy_dependency(package, owners):
    importers = {name for name, path in MODULES.items() if package in _third_party_imports(path)}
    assert {name for name in importers if not any(name == o or name.startswith(o + ".")
                                                  for o in owners)} == set()


#: The most lines of a module, and of a function, in src/ (issue 27).
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 80


def test_no_module_or_function_is_too_long():
    long = []
    for name, path in MODULES.items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            long.append((name, len(text.splitlines())))
        long += [(f"{name}.{node.name}", node.end_lineno - node.lineno + 1)
                 for node in ast.walk(ast.parse(text, str(path)))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []
