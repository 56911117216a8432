"""The layer rule, read from the source: ``data_gen`` and the training code build on a shared core and never on
each other.

The core is ``ssl_pde.core`` (user-error types, path checks, command-line plumbing), the PDE registry
``ssl_pde.pdes``, the HDF5 schema ``ssl_pde.data.schema`` and the package root (version, config directory).
``data_gen`` may import only those from ``ssl_pde``; nothing in ``ssl_pde`` imports ``data_gen`` (the demo runs
the generation and verification command lines as subprocesses); scripts do not import CLI modules' internals
other than their task functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("ssl_pde.core", "ssl_pde.pdes", "ssl_pde.data.schema")


def _imports(path: Path) -> list[str]:
    """Every module a file imports (absolute names; ``from x import y`` gives ``x``), at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def _allowed_from_data_gen(module: str) -> bool:
    return module == "ssl_pde" or any(module == c or module.startswith(c + ".") for c in CORE)


def test_data_gen_builds_only_on_the_core():
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in sorted((ROOT / "data_gen").rglob("*.py"))
        for m in _imports(p)
        if (m == "ssl_pde" or m.startswith("ssl_pde.")) and not _allowed_from_data_gen(m)
    ]
    assert not bad, bad


def test_training_code_never_imports_data_gen():
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in sorted((ROOT / "ssl_pde").rglob("*.py"))
        for m in _imports(p)
        if m == "data_gen" or m.startswith("data_gen.")
    ]
    assert not bad, bad


def test_the_core_imports_nothing_above_it():
    core_files = [*(ROOT / "ssl_pde" / "core").rglob("*.py"), ROOT / "ssl_pde" / "data" / "schema.py"]
    core_files += list((ROOT / "ssl_pde" / "pdes").rglob("*.py"))
    bad = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in core_files
        for m in _imports(p)
        if (m.startswith("ssl_pde.") and not _allowed_from_data_gen(m)) or m.startswith("data_gen")
    ]
    assert not bad, bad


def test_the_rule_is_read_from_real_imports(tmp_path):
    """The parser sees nested and aliased imports (a check that cannot see them would pass vacuously)."""
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from data_gen.cli import generate as g\n    import ssl_pde.lit.vicreg\n")
    assert _imports(f) == ["data_gen.cli", "ssl_pde.lit.vicreg"]
    assert not _allowed_from_data_gen("ssl_pde.lit.vicreg") and _allowed_from_data_gen("ssl_pde.core.cli")


def test_no_call_passes_more_than_six_positional_arguments():
    """Long positional calls hide which value is which; past six, arguments go by keyword. The one exception is the
    symmetry registry's convention ``g(eps, *coordinates, *fields)`` (2D Navier-Stokes: eps, t, x, y, vx, vy, p)."""
    bad = []
    for root in ("ssl_pde", "data_gen", "scripts"):
        for p in sorted((ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(), str(p))):
                if isinstance(node, ast.Call) and len(node.args) > 6:
                    name = ast.unparse(node.func)
                    if not name.startswith("self.symmetries["):
                        bad.append(f"{p.relative_to(ROOT)}:{node.lineno} {name}")
    assert not bad, bad
