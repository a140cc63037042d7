"""Which grader module may import which: read from the source with ast, so a wrong import fails here, by name.

- The checks are written against grader/checks/needs.py, never against the grading session, the batch runner
  or the command line.
- A check module imports only grader.checks.base and grader.checks.needs of its package: what several check
  modules share lives in a module of its own directly under grader/.
- No grader modules import each other in a cycle (imports under TYPE_CHECKING count). A package's __init__
  importing its own submodules is no cycle.
- The grading session and the engine provide every method of that interface, with the same parameters.
"""

from __future__ import annotations

import ast
import inspect
import shutil
from pathlib import Path

from grader.checks.needs import CheckContext, ContainerEngine
from grader.engine import Engine
from grader.session import GradingContext
from grader.spec import REPO_ROOT, load_spec

GRADER = REPO_ROOT / "grader"
CHECKS = "grader.checks"
CHECKS_MAY_IMPORT = {f"{CHECKS}.base", f"{CHECKS}.needs"}
CHECKS_MUST_NOT_REACH = ("grader.session", "grader.batch", "grader.cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(GRADER.rglob("*.py"))}


def imported(name: str) -> set[str]:
    """The grader modules `name` imports anywhere in its text (functions and TYPE_CHECKING blocks included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: from its package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from grader.checks import on_api` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: imported(name) for name in MODULES}


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def path_to(start: str, goal) -> list[str] | None:
    """The shortest import chain from `start` to a module for which `goal(module)` holds, or None."""
    chains, seen = [[start]], {start}
    while chains:
        chain = chains.pop(0)
        for target in sorted(GRAPH[chain[-1]]):
            if goal(target):
                return [*chain, target]
            if target not in seen:
                seen.add(target)
                chains.append([*chain, target])
    return None


def check_modules() -> list[str]:
    return [n for n in MODULES if is_within(n, CHECKS) and n != CHECKS and n not in CHECKS_MAY_IMPORT]


def test_the_graph_sees_the_checks_and_the_session():
    assert f"{CHECKS}.needs" in GRAPH and "grader.session" in GRAPH
    assert CHECKS in GRAPH["grader.session"]
    assert len(check_modules()) >= 5


def test_no_check_reaches_the_session_the_batch_runner_or_the_command_line():
    found = []
    for name in sorted(n for n in MODULES if is_within(n, CHECKS)):
        chain = path_to(name, lambda target: any(is_within(target, bad) for bad in CHECKS_MUST_NOT_REACH))
        if chain:
            found.append(" -> ".join(chain))
    assert not found, "the checks must depend only on grader/checks/needs.py's interface:\n" + "\n".join(found)


def test_check_modules_import_no_other_check_module():
    found = []
    for name in check_modules():
        for target in sorted(GRAPH[name]):
            if is_within(target, CHECKS) and target not in CHECKS_MAY_IMPORT:
                found.append(f"{name} imports {target}")
    assert not found, (
        "a check module may import only grader.checks.base and grader.checks.needs; move what several share "
        "into a module directly under grader/:\n" + "\n".join(found)
    )


def import_cycles() -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), without package -> own submodule.

    Those edges are left out: a package's __init__ importing its submodules runs after they import it.
    """
    edges = {n: {t for t in GRAPH[n] if not is_within(t, n)} for n in GRAPH}
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle_among_grader_modules():
    cycles = import_cycles()
    shown = []
    for group in cycles:
        members = set(group)
        lines = [f"  {n} imports {', '.join(sorted(GRAPH[n] & members))}" for n in group]
        shown.append("a cycle among " + ", ".join(group) + ":\n" + "\n".join(lines))
    assert not cycles, "\n".join(shown)


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    monkeypatch.setitem(GRAPH, "grader.spec", GRAPH["grader.spec"] | {"grader.session"})
    assert any({"grader.spec", "grader.session"} <= set(group) for group in import_cycles())


# --- the interface is kept: the session and the engine provide what grader/checks/needs.py names -------------


def interface(protocol) -> dict[str, inspect.Signature | None]:
    """The protocol's methods (their signatures) and attributes (None), by name."""
    members = {name: None for name in protocol.__annotations__}
    for name, value in vars(protocol).items():
        if callable(value) and not name.startswith("_"):
            members[name] = inspect.signature(value)
    return members


def parameters(signature: inspect.Signature) -> list[str]:
    return [p for p in signature.parameters if p != "self"]


def missing_from(protocol, provider, instance) -> list[str]:
    found = []
    for name, wanted in interface(protocol).items():
        if not hasattr(instance, name):
            found.append(f"{provider.__name__} has no {name}")
        elif wanted is not None:
            given, asked = parameters(inspect.signature(getattr(provider, name))), parameters(wanted)
            if given != asked:
                found.append(f"{provider.__name__}.{name}{tuple(given)}, the interface asks {tuple(asked)}")
    return found


def test_the_grading_session_provides_the_check_context(tmp_path):
    ctx = GradingContext(tmp_path, load_spec(REPO_ROOT / "solutions/01-first-model-container/lab.yaml"), None, None)
    try:
        assert not missing_from(CheckContext, GradingContext, ctx)
    finally:
        ctx._pool.shutdown()  # not closed: close() also cleans up on the engine, and there is none here
        shutil.rmtree(ctx.scratch)


def test_the_engine_provides_what_checks_ask_of_it():
    engine = Engine.__new__(Engine)  # no client: only its methods are read
    engine.session = "s"
    assert not missing_from(ContainerEngine, Engine, engine)
