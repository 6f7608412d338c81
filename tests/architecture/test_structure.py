"""The layout of the three packages, checked by reading their source (``ast``/``tokenize``; nothing is imported).

- No import cycle among the modules of ``rankrag``, ``rankrag_langchain`` and ``rankrag_llamaindex``.
- No private name (``_name``, or a private module ``_name.py``) imported across packages.
- Every ``# type: ignore`` in library code says why, in a comment after it on the same line.

How the import graph is built (the rules the cycle check counts by):

- Every import counts wherever it stands: at module level, inside a function, under ``if TYPE_CHECKING:``.
- ``import a.b.c`` is an edge to ``a.b.c``. ``from a.b import c`` is an edge to ``a.b.c`` when that is a module
  of its own, else to ``a.b`` (the package ``__init__`` that defines or re-exports ``c``).
- A package ``__init__`` that re-exports lazily (PEP 562) names its modules as strings in ``_EXPORTS``; each of
  those strings is an edge from that ``__init__``, as is a literal ``importlib.import_module("a.b")`` anywhere.
- Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first. Those implied edges are not counted: an
  edge goes to the module named, and a package ``__init__`` has edges to what it imports itself. (Counted, every
  package ``__init__`` that re-exports a submodule would close a cycle with each of its submodules.)
- Only the three packages' modules are nodes; imports of other libraries are left out.

A module's package is the directory it lies in (``a/b/c.py`` and ``a/b/__init__.py`` are both in ``a.b``).
Run this file directly for a summary of every finding and the ``# type: ignore`` count.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rankrag", "rankrag_langchain", "rankrag_llamaindex")
LAZY_EXPORTS_NAME = "_EXPORTS"
TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?")
NOT_A_REASON = re.compile(r"(noqa|type:|pragma)\b")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def package(self) -> str:
        """The dotted package whose directory holds this file."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def where(self) -> str:
        return self.path.relative_to(REPO_ROOT).as_posix()


@dataclass(frozen=True)
class Import:
    """One import of a module of the three packages: ``importer`` names ``target`` at ``line``."""

    importer: Module
    target: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.importer.where}:{self.line}"


@dataclass(frozen=True)
class PrivateUse:
    """A private name (or private module) ``name`` of ``owner_package``, used from another package."""

    user: Module
    line: int
    name: str
    owner_package: str

    def __str__(self) -> str:
        return f"{self.user.where}:{self.line}: {self.name} (private to {self.owner_package}, used from {self.user.package})"


# ------------------------------------------------------------------------------------------ modules
@cache
def library_modules() -> dict[str, Module]:
    """Every module of the three packages by dotted name."""
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = Module(name, path, is_package)
    return modules


@cache
def parsed(module: Module) -> ast.Module:
    return ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def owner_of_private_module(target: str) -> str | None:
    """The package a private module in ``target``'s dotted path belongs to, or None when no part is private."""
    parts = target.split(".")
    for position, part in enumerate(parts):
        if is_private(part):
            return ".".join(parts[:position])
    return None


def containing_module(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a module of the three packages."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in library_modules():
            return candidate
    return None


def absolute_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement reads from, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


# ------------------------------------------------------------------------------------------ imports
def imports_of(module: Module) -> Iterator[Import]:
    """Every import of a library module by ``module``, by the rules in this file's docstring."""
    for node in ast.walk(parsed(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = containing_module(alias.name)
                if target is not None:
                    yield Import(module, target, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = absolute_from(module, node)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                target = submodule if submodule in library_modules() else containing_module(source)
                if target is not None:
                    yield Import(module, target, node.lineno)
        else:
            for name, line in _module_path_strings(node):
                if name in library_modules():
                    yield Import(module, name, line)


def _module_path_strings(node: ast.AST) -> Iterator[tuple[str, int]]:
    """Module paths written as strings: values of a lazy ``_EXPORTS`` dict and ``import_module("...")`` arguments."""
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and t.id == LAZY_EXPORTS_NAME for t in targets):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield value.value, value.lineno
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        function = node.func
        called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
        if called == "import_module" and isinstance(node.args[0].value, str):
            yield node.args[0].value, node.lineno


def import_graph() -> dict[str, dict[str, list[Import]]]:
    """importer -> imported module -> the import statements behind that edge."""
    graph: dict[str, dict[str, list[Import]]] = {name: {} for name in library_modules()}
    for module in library_modules().values():
        for found in imports_of(module):
            if found.target != module.name:
                graph[module.name].setdefault(found.target, []).append(found)
    return graph


def strongly_connected_components(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """Tarjan's algorithm; components of one module are left out (a module importing itself is not an edge)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = lowest[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                lowest[node] = min(lowest[node], lowest[successor])
            elif successor in on_stack:
                lowest[node] = min(lowest[node], index[successor])
        if lowest[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def shortest_cycle(graph: dict[str, dict[str, list[Import]]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module, as a path that ends where it starts."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph[node]):
                if successor == start:
                    path = [start, node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                if successor in members and successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    return [start]


def describe_cycle(graph: dict[str, dict[str, list[Import]]], component: list[str]) -> str:
    cycle = shortest_cycle(graph, component)
    lines = [f"{len(component)} modules: {', '.join(component)}", f"  e.g. {' -> '.join(cycle)}", "  its edges:"]
    members = set(component)
    for importer in component:
        for target, statements in sorted(graph[importer].items()):
            if target in members:
                places = ", ".join(sorted({s.where for s in statements}))
                lines.append(f"    {importer} -> {target}  ({places})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ private names
def module_bindings(module: Module) -> dict[str, str]:
    """Local names that ``module``'s imports bind to library modules (``import a.b`` binds ``a``)."""
    bound: dict[str, str] = {}
    for node in ast.walk(parsed(module)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name if alias.asname else alias.name.partition(".")[0]
                if name in library_modules():
                    bound[alias.asname or name] = name
        elif isinstance(node, ast.ImportFrom):
            source = absolute_from(module, node)
            for alias in node.names:
                if f"{source}.{alias.name}" in library_modules():
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
    return bound


def private_uses(module: Module) -> Iterator[PrivateUse]:
    """Private names and private modules of another package that ``module`` imports or reads as attributes."""
    for found in imports_of(module):
        owner = owner_of_private_module(found.target)
        if owner is not None and owner != module.package:
            yield PrivateUse(module, found.line, found.target, owner)
    bindings = module_bindings(module)
    for node in ast.walk(parsed(module)):
        if isinstance(node, ast.ImportFrom):
            source = absolute_from(module, node)
            if source not in library_modules():
                continue
            source_package = library_modules()[source].package
            for alias in node.names:
                if is_private(alias.name) and source_package != module.package:
                    yield PrivateUse(module, node.lineno, f"{source}.{alias.name}", source_package)
        elif isinstance(node, ast.Attribute) and is_private(node.attr):
            owner_module = _attribute_owner(node.value, bindings)
            if owner_module is not None and owner_module.package != module.package:
                yield PrivateUse(module, node.lineno, f"{owner_module.name}.{node.attr}", owner_module.package)


def _attribute_owner(value: ast.expr, bindings: dict[str, str]) -> Module | None:
    """The library module that ``value`` (a name or dotted attribute chain) evaluates to, if it is one."""
    parts: list[str] = []
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name) or value.id not in bindings:
        return None
    dotted = ".".join([bindings[value.id], *reversed(parts)])
    return library_modules().get(dotted)


# ------------------------------------------------------------------------------------------ type: ignore
def type_ignores(module: Module) -> Iterator[tuple[int, bool]]:
    """(line, carries a reason) for every ``# type: ignore`` comment in ``module``."""
    source = module.path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        match = TYPE_IGNORE.search(token.string)
        if match is None:
            continue
        after = [part.strip() for part in token.string[match.end() :].split("#")]
        yield token.start[0], any(part and not NOT_A_REASON.match(part) for part in after)


def all_type_ignores() -> list[tuple[str, bool]]:
    return [(f"{m.where}:{line}", reasoned) for m in library_modules().values() for line, reasoned in type_ignores(m)]


# ------------------------------------------------------------------------------------------ tests
def test_the_graph_sees_the_lazy_exports_and_the_deferred_imports() -> None:
    import rankrag

    graph = import_graph()
    assert set(rankrag._EXPORTS.values()) <= set(graph["rankrag"])  # module paths written as strings
    assert "rankrag.errors" in graph["rankrag.cli.common"]  # imported inside a function only


def test_no_import_cycle() -> None:
    graph = import_graph()
    cycles = [describe_cycle(graph, component) for component in strongly_connected_components(graph)]
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(cycles)


def test_no_private_name_is_imported_across_packages() -> None:
    found = sorted({str(use) for module in library_modules().values() for use in private_uses(module)})
    assert not found, f"{len(found)} private name(s) used outside their package:\n" + "\n".join(found)


def test_every_type_ignore_says_why() -> None:
    ignores = all_type_ignores()
    unexplained = [where for where, reasoned in ignores if not reasoned]
    assert not unexplained, (
        f"{len(unexplained)} of the {len(ignores)} '# type: ignore' in library code give no reason "
        "(write it after: '# type: ignore[code]  # why'):\n" + "\n".join(unexplained)
    )


if __name__ == "__main__":
    graph = import_graph()
    components = strongly_connected_components(graph)
    print(f"import cycles: {len(components)}")
    for component in components:
        print(describe_cycle(graph, component))
    uses = sorted({str(use) for module in library_modules().values() for use in private_uses(module)})
    print(f"private names used across packages: {len(uses)}", *uses, sep="\n")
    ignores = all_type_ignores()
    unexplained = [where for where, reasoned in ignores if not reasoned]
    print(
        f"'# type: ignore' in library code: {len(ignores)}, without a reason: {len(unexplained)}",
        *unexplained,
        sep="\n",
    )
