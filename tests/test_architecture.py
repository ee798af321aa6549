"""The house, checked on the source: no import cycles (module or package level), every import points
down the layers of docs/architecture.md, decoders only in media/, Lightning only in train/ and
methods/, models/ and losses/ plain torch without file I/O, and no oversized file or function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "avssl"

# Layers, bottom first: a package may import the packages below it, never one above or beside it.
LAYERS = ["errors", "config", "media", "models", "losses", "data", "methods", "train", "evaluate", "bench",
          "demo", "cli"]
# Narrower than the order: plain torch below, and data that never reaches for models or losses.
ALLOWED_ONLY = {
    "config": {"errors"},
    "media": {"errors"},
    "models": {"errors"},
    "losses": {"errors"},
    "data": {"errors", "config", "media"},
}
DECODERS = {"av", "torchcodec", "decord", "cv2"}
LIGHTNING = {"lightning", "pytorch_lightning"}
MAX_FILE_LINES, MAX_FUNCTION_LINES = 350, 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement of the file names (function-level imports included)."""
    names = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


FILES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
IMPORTS = {m: imported_names(p, m) for m, p in FILES.items()}
# internal edges, without a package's edges to its own submodules (an __init__ re-exporting them)
EDGES = {m: {n for n in names if n in FILES and n != m and not n.startswith(m + ".")} for m, names in IMPORTS.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of size > 1 (the cycles)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                out.append(sorted(component))

    for vertex in graph:
        if vertex not in index:
            visit(vertex)
    return out


def test_every_top_level_package_has_a_layer():
    assert {layer(m) for m in FILES if layer(m)} - {"__main__"} <= set(LAYERS)


def test_no_module_cycles():
    assert strongly_connected(EDGES) == []


def test_no_package_cycles():
    packages: dict[str, set[str]] = {}
    for m, deps in EDGES.items():
        packages.setdefault(layer(m), set()).update(layer(d) for d in deps if layer(d) != layer(m))
    assert strongly_connected(packages) == []


def test_imports_point_down_the_layers():
    broken = []
    for m, deps in EDGES.items():
        a = layer(m)
        if a not in LAYERS:
            continue
        allowed = ALLOWED_ONLY.get(a, set(LAYERS[: LAYERS.index(a)]))
        # the root package (its version, the lazy top-level API) may be read from anywhere
        broken += [f"{m} imports {d}" for d in deps if layer(d) not in (a, "") and layer(d) not in allowed]
    assert broken == []


@pytest.mark.parametrize("rule, names, allowed_layers", [
    ("decoder", DECODERS, {"media"}),
    ("Lightning", LIGHTNING, {"train", "methods"}),
])
def test_third_party_imports_stay_in_their_layers(rule, names, allowed_layers):
    offenders = [f"{m} imports {n}" for m, imported in IMPORTS.items() for n in imported
                 if n.split(".")[0] in names and layer(m) not in allowed_layers]
    assert offenders == [], f"{rule} outside {sorted(allowed_layers)}"


def test_models_and_losses_do_no_file_io():
    offenders = []
    for m, path in FILES.items():
        if layer(m) not in ("models", "losses"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = getattr(getattr(func, "value", None), "id", "")
            if (name == "open" and not owner) or (owner == "torch" and name in ("load", "save")):
                offenders.append(f"{m}:{node.lineno} {owner + '.' if owner else ''}{name}")
    assert offenders == []


def test_files_and_functions_stay_small_and_say_what_they_are_for():
    problems = []
    for m, path in FILES.items():
        text = path.read_text()
        tree = ast.parse(text)
        if text.count("\n") > MAX_FILE_LINES:
            problems.append(f"{m}: {text.count(chr(10))} lines")
        if text.count("\n") > 5 and not ast.get_docstring(tree):
            problems.append(f"{m}: no module docstring")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{m}.{node.name}: {length} lines")
    assert problems == []


def test_the_checks_see_a_cycle_and_a_layer_break():
    """The checker itself: a made-up graph with a cycle is caught, and so is an upward import."""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("avssl.data.recipes.avts") == "data"
    assert "avssl.methods.registry" in EDGES["avssl.methods.configs"]
