"""The package's folders import one way: no folder imports a folder that imports it back.

Every module under ``lightning_cv/`` is parsed with ``ast``; its imports of ``lightning_cv``
names, lazy ones inside functions included, become arrows between nodes: a subpackage is one
node (``zoo``, ``models``, ...), and each top-level module is its own (``task``, ``optim``).
"""

import ast
from pathlib import Path

import lightning_cv

PACKAGE = Path(lightning_cv.__file__).parent


def _node(module: str) -> str:
    """``lightning_cv.zoo.pretrained`` -> ``zoo``; ``lightning_cv.task`` -> ``task``; the package's
    own ``__init__`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The ``lightning_cv`` modules (or packages) a module's code imports, wherever it does."""
    found = set()
    for statement in ast.walk(tree):
        if isinstance(statement, ast.Import):
            found |= {alias.name for alias in statement.names}
        elif isinstance(statement, ast.ImportFrom):
            if statement.level:  # relative: from the module's own package upwards
                base = module.split(".")[: len(module.split(".")) - statement.level + is_package]
                source = ".".join([*base, *filter(None, [statement.module])])
            else:
                source = statement.module or ""
            # `from lightning_cv import zoo` imports the subpackage zoo, not the package's names
            found |= {f"{source}.{alias.name}" for alias in statement.names}
    return {name for name in found if name.split(".")[0] == "lightning_cv"}


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest existing module that ``name`` starts with (``pkg.mod.Class`` -> ``pkg.mod``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def folder_graph() -> dict[str, set[str]]:
    """Node -> the nodes it imports, self-arrows left out."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(path): path for path in files}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        names = _imported(tree, module, is_package=path.name == "__init__.py")
        edges = {_node(target) for name in names if (target := _resolve(name, set(modules)))}
        graph.setdefault(_node(module), set()).update(edges - {_node(module)})
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (depth-first in sorted order, so
    the answer is stable)."""
    state: dict[str, str] = {}  # "open" on the current path, "done" once explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], path[len(path) :] = "open", [node]
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_folders_import_one_way():
    cycle = find_cycle(folder_graph())
    assert cycle is None, "import cycle between folders: " + " -> ".join(cycle)


def test_the_task_and_the_zoo_do_not_import_each_other():
    graph = folder_graph()
    assert "zoo" not in graph["task"] and "hub" not in graph["task"]
    assert {"task", "hub"} <= graph["zoo"]  # the apps sit above the task and use the low layer


def test_the_graph_sees_lazy_relative_and_package_imports(tmp_path):
    tree = ast.parse(
        "def f():\n    from lightning_cv.zoo.hub import x\n"
        "from . import task\nfrom ..models import create_model\nfrom lightning_cv import zoo\n"
    )
    found = _imported(tree, "lightning_cv.callbacks.tta", is_package=False)
    assert found == {"lightning_cv.zoo.hub.x", "lightning_cv.callbacks.task",
                     "lightning_cv.models.create_model", "lightning_cv.zoo"}  # fmt: skip
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
