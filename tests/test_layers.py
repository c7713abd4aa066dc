"""The package's import structure: imports run one way, down the layers, with no circle.

Read from the source (every import, also those inside functions), so a new upward import fails
here before it can become a circle that only a function-level import keeps importable.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "l2l_tf"

#: Each part of l2l_tf and its layer: a module imports only from lower layers, or from its own
#: part. Mains, scripts and tests sit above all of them.
LAYERS = {
    "errors": 0,
    "io": 0,
    "seeding": 0,
    "config": 1,
    "data": 2,
    "problems": 3,
    "optimizers": 3,
    "unroll": 4,
    "pretrained": 4,  # shipped rules: built from optimizers/ alone
    "rl": 4,
    "meta": 5,
    "evaluation": 6,
    "run": 7,
    "reporting": 8,
    "experiments": 9,
    "keras": 10,
    "cli": 10,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The l2l_tf modules `path` imports (`from l2l_tf.a import b` counts b if it is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("l2l_tf"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("l2l_tf"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py")
                is_package = PACKAGE.parent / candidate.replace(".", "/")
                out.add(candidate if is_module.exists() or is_package.is_dir() else node.module)
    return out


def part(module: str) -> str:
    """'l2l_tf.meta.l2l' -> 'meta'; the package itself -> ''."""
    return module.split(".")[1] if "." in module else ""


def subpart(module: str) -> str:
    """The experiment a module belongs to ('l2l_tf.experiments.init.training' -> 'init')."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "experiments" else ""


GRAPH = {module_name(p): imported_modules(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_part_has_a_layer():
    assert {part(m) for m in GRAPH} - {""} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_run_down_the_layers(module):
    for dep in GRAPH[module]:
        if part(dep) == part(module) or part(dep) == "":
            continue
        assert LAYERS[part(dep)] < LAYERS[part(module)], f"{module} imports {dep}: upward"


def test_experiments_never_import_each_other():
    for module, deps in GRAPH.items():
        for dep in deps:
            if subpart(module) and subpart(dep):
                assert subpart(dep) == subpart(module), f"{module} imports {dep}"


def test_no_import_circle():
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", "import circle: " + " -> ".join([*path, module])
        state[module] = "open"
        for dep in sorted(GRAPH.get(module, ())):
            # A package's __init__ importing its own modules is its public surface, not a circle.
            if dep.startswith(module + "."):
                continue
            visit(dep, [*path, module])
        state[module] = "done"

    for module in sorted(GRAPH):
        visit(module, [])


def test_the_checker_sees_an_upward_import(tmp_path):
    """The checker itself can fail: a low layer importing a high one is an upward import."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    from l2l_tf.run import loop\n")
    (dep,) = imported_modules(source)
    assert dep == "l2l_tf.run.loop" and LAYERS[part(dep)] > LAYERS["problems"]


def test_no_private_name_used_outside_its_module():
    root = PACKAGE.parent
    sources = [*PACKAGE.rglob("*.py"), *root.glob("*.py"), *(root / "bench").rglob("*.py")]
    sources += [*(root / "examples").glob("*.py"), *(root / "tests").glob("*.py")]
    scripts = root / "scripts"
    if scripts.is_dir():
        sources += list(scripts.glob("*.py"))
    for path in sources:
        tree = ast.parse(path.read_text())
        aliases = set()  # names bound to l2l_tf modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("l2l_tf"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path} imports {private} from {node.module}"
                aliases.update(a.asname or a.name for a in node.names)
            elif isinstance(node, ast.Import):
                aliases.update(a.asname for a in node.names if a.name.startswith("l2l_tf"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                used = node.value.id in aliases and node.attr.startswith("_")
                assert not (used and not node.attr.startswith("__")), (
                    f"{path}:{node.lineno} uses {node.value.id}.{node.attr}"
                )
