"""The house's fences: no import cycle between engine modules (imports inside functions
included), panels use the engine's public API only, and private Keras API is read in
``engine/model/internals.py`` only (string ``getattr`` included)."""

import ast
import importlib
import pathlib
import re

PACKAGE = pathlib.Path(__file__).parents[1] / "cnnviz_widgets"
ENGINE = PACKAGE / "engine"
# the modules above the engine: they may use its public API only
ABOVE = [
    *(PACKAGE / "widgets").rglob("*.py"),
    PACKAGE / "session.py",
    *(PACKAGE / "classroom").rglob("*.py"),
    *(PACKAGE / "compat").rglob("*.py"),
]
# moved onto the public API by their owners' branches (issue 22: the Explain panel, the
# convolution explainer and the classroom items); every name they import is public now
# (e.g. cw.image_input, cw.inbound_paths, cw.as_loaded, cw.trace_from_maps): take a file
# off this list when its branch lands
PENDING: set[str] = set()
INTERNALS = ENGINE / "model" / "internals.py"
# Keras' private attributes the engine needs (read through internals.py only)
PRIVATE_KERAS = re.compile(
    r"_(inbound_nodes|outbound_nodes|nodes_by_depth|functional|run_through_graph|"
    r"omit_frequent_tracing_warning|value|keras_history|layers|tracker|self_tracked_\w+|"
    r"build_shapes_dict|called_with_\w+)$"
)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    base = PACKAGE.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_of(path: pathlib.Path) -> list[tuple[str, list[str], int]]:
    """``(module, names, line)`` of every import in the file, wherever it is (inside
    functions too), relative imports resolved."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.extend((a.name, [], node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, [a.name for a in node.names], node.lineno))
    return out


def engine_graph() -> dict[str, set[str]]:
    """Which engine module imports which (``from package import submodule`` is an import
    of the submodule only: it does not run the package's ``__init__`` again)."""
    graph: dict[str, set[str]] = {}
    for path in ENGINE.rglob("*.py"):
        targets = graph.setdefault(module_name(path), set())
        for module, names, _ in imports_of(path):
            if not module.startswith("cnnviz_widgets.engine"):
                continue
            submodules = {f"{module}.{n}" for n in names if is_module(f"{module}.{n}")}
            targets.update(submodules)
            if len(submodules) < len(names) or not names:  # names from the module itself
                targets.add(module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), and
    modules importing themselves."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1 or v in graph.get(v, ()):
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_engine_modules():
    graph = engine_graph()
    assert len(graph) > 40  # the walk found the engine
    assert "cnnviz_widgets.engine.dataset.search" in graph["cnnviz_widgets.engine.dataset.backends"]
    assert cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle_through_an_import_inside_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    # and the import walk reads imports inside functions
    source = ENGINE / "dataset" / "ray_pool.py"
    assert any(m == "ray" for m, _, _ in imports_of(source))  # imported inside require_ray


def public_names() -> dict[str, set[str]]:
    """The engine's public API: the names of ``cnnviz_widgets.engine``'s ``__all__`` and of
    each of its subpackages' ``__init__`` ``__all__``."""
    out = {}
    for init in [ENGINE / "__init__.py", *ENGINE.glob("*/__init__.py")]:
        name = module_name(init)
        out[name] = set(importlib.import_module(name).__all__)
    return out


def test_modules_above_the_engine_use_its_public_api_only():
    public = public_names()
    wrong = []
    for path in ABOVE:
        if str(path.relative_to(PACKAGE)) in PENDING:
            continue
        for module, names, line in imports_of(path):
            if not module.startswith("cnnviz_widgets.engine"):
                continue
            where = f"{path.relative_to(PACKAGE)}:{line}"
            if module not in public:
                wrong.append(f"{where} imports from {module} (not a public engine package)")
                continue
            outside = [n for n in names if n not in public[module] and n != "*"]
            if outside:
                wrong.append(f"{where} imports {outside} from {module} (not in its __all__)")
    assert not wrong, "\n".join(wrong)


def test_the_pending_files_import_only_names_the_public_api_has():
    """What the pending files import from inside the engine is public already, so moving
    them is a change of import lines only."""
    public = set().union(*public_names().values())
    for path in ABOVE:
        if str(path.relative_to(PACKAGE)) not in PENDING:
            continue
        for module, names, _ in imports_of(path):
            if module.startswith("cnnviz_widgets.engine"):
                assert set(names) <= public, f"{path.name} imports {set(names) - public}"


def private_keras_uses(path: pathlib.Path) -> list[str]:
    """Private Keras attributes read in the file: ``x._inbound_nodes``, and the same
    through a string: ``getattr(x, "_inbound_nodes")``, ``hasattr``, ``setattr``, and the
    ``keras.src`` package."""
    text = path.read_text()
    found = ["keras.src"] if re.search(r"\bkeras\.src\b", text) else []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Attribute) and PRIVATE_KERAS.match(node.attr):
            found.append(node.attr)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and PRIVATE_KERAS.match(node.value)
        ):
            found.append(repr(node.value))
    return found


def test_private_keras_api_is_read_in_internals_only():
    assert private_keras_uses(INTERNALS)  # the pattern finds what internals reads
    for path in PACKAGE.rglob("*.py"):
        if path == INTERNALS:
            continue
        found = private_keras_uses(path)
        assert not found, f"{path.relative_to(PACKAGE)} reads private Keras API: {found}"


def test_a_string_getattr_of_a_private_attribute_is_caught(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text('def f(layer):\n    return getattr(layer, "_inbound_nodes", [])\n')
    assert private_keras_uses(sneaky) == ["'_inbound_nodes'"]
