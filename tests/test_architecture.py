"""The structure docs/architecture.md draws, enforced: layers that point one way, no import circles.

Every import of a ``churnml`` module in ``src/churnml`` (at the top of a module or inside a function)
is read from the source with ``ast``. The layers, lowest first:

* foundation (anyone may import): ``errors``, ``progress``, ``contract`` (the data contract's tables,
  columns and SQL quoting: the vocabulary everything shares) and ``duck`` (the DuckDB workspace);
* ``io`` (files, databases) and ``tracking`` (MLflow): foundation only (``tracking`` may use ``io``);
* the stages, in order: data (``validate``, ``dataset``, ``cutoffs``, ``generate``), then ``labels``,
  ``features`` and ``revenue``, then ``modeling``, then ``scoring``, then ``pages``. A stage imports
  foundation and stages of its own or an earlier layer, never a later one, ``io``, ``tracking`` or the
  composition layer;
* composition (the wiring that reads config and calls io, tracking and stages): ``cli``, ``flows``,
  ``config``, ``api``, ``serving``, ``spark``, ``__main__``, ``_pyfunc_entry``. Nothing but composition
  imports composition, and ``cli`` is imported by nobody.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "churnml"

FOUNDATION = {"churnml", "churnml.errors", "churnml.progress", "churnml.contract", "churnml.duck", "churnml.resources"}
STAGES = [
    ("data", ("churnml.validate", "churnml.dataset", "churnml.cutoffs", "churnml.generate")),
    ("labels and features", ("churnml.labels", "churnml.features", "churnml.revenue")),
    ("modeling", ("churnml.modeling",)),
    ("scoring", ("churnml.scoring",)),
    ("pages", ("churnml.pages",)),
]
COMPOSITION = (
    "churnml.cli",
    "churnml.flows",
    "churnml.config",
    "churnml.api",
    "churnml.serving",
    "churnml.spark",
    "churnml.__main__",
    "churnml._pyfunc_entry",
    "churnml._mlflow_store",
)
# imports kept inside a function, on purpose: the CLI imports each command's flow only when it runs
# (`churnml --help` must not load MLflow), and optional extras load only when used
# (and MLflow's artifact-repository entry point, loaded while `import mlflow` runs inside churnml.tracking)
LAZY_OK = {"churnml.cli", "churnml._mlflow_store"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def imports_of(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """(imported churnml module, line, inside a function?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def visit(node, in_function: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, in_function) for a in child.names if a.name.startswith("churnml"))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (child.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                if base.startswith("churnml"):
                    known = modules()
                    for a in child.names:  # `from churnml.modeling import recipe` imports a module
                        sub = f"{base}.{a.name}"
                        out.append((sub if sub in known else base, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return out


def kind(mod: str) -> tuple[str, int]:
    """('foundation'|'io'|'tracking'|'stage'|'composition', stage level)."""
    if mod in FOUNDATION:
        return "foundation", -1
    if mod == "churnml.io" or mod.startswith("churnml.io."):
        return "io", -1
    if mod == "churnml.tracking":
        return "tracking", -1
    for level, (_, prefixes) in enumerate(STAGES):
        if any(mod == p or mod.startswith(p + ".") for p in prefixes):
            return "stage", level
    if any(mod == p or mod.startswith(p + ".") for p in COMPOSITION):
        return "composition", 99
    raise AssertionError(f"{mod} belongs to no layer: add it to tests/test_architecture.py and docs/architecture.md")


def edges() -> list[tuple[str, str, int, bool]]:
    out = []
    for name, path in sorted(modules().items()):
        for target, line, lazy in imports_of(path, name):
            out.append((name, target, line, lazy))
    return out


def test_every_module_has_a_layer():
    for name in modules():
        kind(name)


def test_layers_point_one_way():
    bad = []
    for src, dst, line, _ in edges():
        (ks, ls), (kd, ld) = kind(src), kind(dst)
        where = f"{src}:{line} imports {dst}"
        if kd == "foundation":
            continue
        if dst == "churnml.cli" and src != "churnml.__main__":  # `python -m churnml` runs the CLI
            bad.append(f"{where}: nothing imports the CLI (it is the composition root)")
        elif ks in ("io", "tracking"):
            if not (kd == "io" or (ks == "tracking" and kd == "io")):
                bad.append(f"{where}: io and tracking import foundation only (and tracking, io)")
        elif ks == "stage":
            if kd in ("io", "tracking", "composition"):
                bad.append(f"{where}: a stage never imports {kd}")
            elif ld > ls:
                bad.append(f"{where}: {STAGES[ls][0]} must not import the later {STAGES[ld][0]} layer")
        elif ks == "foundation":
            bad.append(f"{where}: foundation imports nothing but foundation")
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    graph: dict[str, set[str]] = {}
    for src, dst, _, _ in edges():
        if src != dst and not (src == "churnml" or dst == "churnml"):
            graph.setdefault(src, set()).add(dst)
    # package __init__ re-exports: an import of a package is an import of its __init__ module
    seen, stack, cycles = set(), [], []

    def dfs(node: str, path: list[str]):
        if node in path:
            cycles.append(path[path.index(node) :] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        for nxt in sorted(graph.get(node, ())):
            dfs(nxt, path + [node])

    for n in sorted(graph):
        dfs(n, stack)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_churnml_imports_are_at_the_top_of_modules():
    hidden = [
        f"{src}:{line} imports {dst} inside a function"
        for src, dst, line, lazy in edges()
        if lazy and src not in LAZY_OK
    ]
    assert not hidden, "\n".join(hidden)


@pytest.mark.parametrize("rule", ["stage imports io", "later layer", "circle"])
def test_the_checks_catch_what_they_forbid(rule, tmp_path, monkeypatch):
    """The checks above can fail: a planted violation is reported."""
    import textwrap

    pkg = tmp_path / "src" / "churnml"
    for sub in ("io", "modeling", "scoring"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "io" / "tables.py").write_text("")
    if rule == "stage imports io":
        (pkg / "modeling" / "a.py").write_text("from churnml.io.tables import x\n")
        test = test_layers_point_one_way
    elif rule == "later layer":
        (pkg / "modeling" / "a.py").write_text(
            textwrap.dedent("""
            def f():
                from churnml.scoring import b
        """)
        )
        (pkg / "scoring" / "b.py").write_text("")
        test = test_layers_point_one_way
    else:
        (pkg / "modeling" / "a.py").write_text("from churnml.modeling import b\n")
        (pkg / "modeling" / "b.py").write_text("from churnml.modeling import a\n")
        test = test_no_import_circles
    monkeypatch.setitem(globals(), "SRC", tmp_path / "src")
    monkeypatch.setitem(globals(), "PKG", pkg)
    with pytest.raises(AssertionError):
        test()
