"""Two gates on the code's shape, read from the source with the stdlib's ast (no import runs, so a module
that needs the worker's or infra's packages is read like any other):

- no import cycle among the project's own modules (hark, lambdas, worker and infra's hark_infra), counting
  module-level and function-level imports both: a cycle through a function-level import still ties two
  modules together, it only hides it from the interpreter's start-up;
- no hand-written function over 150 lines (the generated hark/client/api_client and the tests aside).

ast rather than grimp/import-linter: the graph is a few dozen lines of the stdlib, and it reads infra/ and
the workers without installing their dependencies into the test's environment."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Top-level package -> the folder that holds it (infra's package is imported as hark_infra, from infra/).
PACKAGES = {"hark": REPO, "lambdas": REPO, "worker": REPO, "hark_infra": REPO / "infra"}
GENERATED = [REPO / "hark" / "client" / "api_client"]
LENGTH_ROOTS = ["hark", "lambdas", "worker", "infra", "bench", "loadtests", "tools"]
LENGTH_SKIP = [*GENERATED, REPO / "infra" / "build", REPO / "infra" / "cdk.out"]
MAX_FUNCTION_LINES = 150


def _python_files(root: Path, skip: list[Path]) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if not any(path.is_relative_to(s) for s in skip):
            yield path


def _module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package, base in PACKAGES.items():
        for path in _python_files(base / package, [REPO / "infra" / "build", REPO / "infra" / "cdk.out"]):
            modules[_module_name(path, base)] = path
    return modules


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module name an import statement anywhere in the tree (top level or inside a function) may
    bind, relative imports resolved; `from a import b` yields both a and a.b (b may be a submodule)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = set()
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            # The edge goes to the module named; `import a.b` also runs package a, but a parent package is
            # always imported first (a submodule that imports its own package finds it already importing),
            # so parents are not edges, as in grimp.
            if name in modules and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("import x\ndef f():\n    from y import z\n")
    assert set(_imported_names(tree, "m", False)) == {"x", "y", "y.z"}
    tree = ast.parse("from . import sibling\nfrom ..up import name\n")
    assert set(_imported_names(tree, "p.q.m", False)) == {"p.q", "p.q.sibling", "p.up", "p.up.name"}


def test_the_graph_holds_every_package_and_sees_known_edges():
    graph = import_graph()
    assert {m.split(".")[0] for m in graph} == set(PACKAGES)
    assert "hark.api.control" in graph["lambdas.api.handler"]
    assert "hark.domain.resources" in graph["hark_infra.tables"]


def test_no_import_cycle_among_the_projects_modules():
    assert cycles(import_graph()) == []


# Packages by audience (docs/architecture.md, "Where the code lives"): what each may import of the project.
# The Lambda asset carries hark.domain, hark.api and lambdas only, so the first three rules keep it closed.
MAY_IMPORT = {
    "hark.domain": {"hark.domain"},
    "hark.api": {"hark.domain", "hark.api"},
    "lambdas": {"hark.domain", "hark.api", "lambdas"},
    "worker": {"hark.domain", "worker"},
    # The live service answers clients itself, with no authorizer in front: it checks credentials as the API does.
    "worker.live": {"hark.domain", "hark.api", "worker", "worker.live"},
    "hark.ops": {"hark.domain", "hark.ops"},
    "hark.evaluation": {"hark.evaluation"},
}


def _room(module: str) -> str:
    """The package of MAY_IMPORT (or its top-level package) a module belongs to."""
    parts = module.split(".")
    two = ".".join(parts[:2])
    return two if two in MAY_IMPORT or (parts[0] == "hark" and len(parts) > 1) else parts[0]


def layering_breaches(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if _room(module) in MAY_IMPORT
        for target in targets
        if _room(target) not in MAY_IMPORT[_room(module)]
    )


def test_the_layering_check_finds_a_breach():
    graph = {"hark.domain.jobs": {"hark.api.control"}, "hark.api.control": {"hark.domain.jobs"}}
    assert layering_breaches(graph) == ["hark.domain.jobs -> hark.api.control"]


def test_each_package_imports_only_what_its_audience_may():
    assert layering_breaches(import_graph()) == []


def long_functions() -> list[str]:
    found = []
    for root in LENGTH_ROOTS:
        for path in _python_files(REPO / root, LENGTH_SKIP):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    assert node.end_lineno is not None
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} {lines} lines")
    return found


def test_no_hand_written_function_over_150_lines():
    assert long_functions() == []
