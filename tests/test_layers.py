"""The tree's layers, as DESIGN.md draws them: each package imports only what lies below it.

Read from the source with `ast`, so a forbidden import fails here even when no test runs the
code that makes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "server" / "src" / "jobqueue_server"

# package folder -> top-level modules it must never import
FORBIDDEN = {
    SERVER: {
        "jobqueue_worker",
        "jobqueue_cli",
        "jobqueue_bench",
        "PIL",
        "aiosmtpd",
        "aiosmtplib",
        "httpx",
        "click",
    },
    SERVER / "store": {"grpc", "grpc_status", "google", "jobqueue"},
    SERVER / "api": {"redis"},
    ROOT / "worker" / "src" / "jobqueue_worker": {
        "jobqueue_server",
        "jobqueue_cli",
        "jobqueue_bench",
        "redis",
    },
    ROOT / "clients" / "python" / "src" / "jobqueue": {
        "jobqueue_server",
        "jobqueue_worker",
        "jobqueue_cli",
        "jobqueue_bench",
        "redis",
    },
}


def imported_modules(path: Path) -> set[str]:
    """The top-level names of every module `path` imports (relative imports excluded)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "/v1/" not in p.as_posix())


@pytest.mark.parametrize("folder", sorted(FORBIDDEN), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_layer_does_not_import_what_lies_above_or_beside_it(folder: Path) -> None:
    breaches = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[folder])
        for path in _sources(folder)
        if imported_modules(path) & FORBIDDEN[folder]
    }
    assert breaches == {}


def test_the_server_package_declares_none_of_the_workers_or_the_clis_dependencies() -> None:
    declared = (ROOT / "server" / "pyproject.toml").read_text(encoding="utf-8").lower()
    for name in ("pillow", "aiosmtpd", "aiosmtplib", "httpx", "click", "rich"):
        assert f'"{name}' not in declared, name


def test_the_import_checker_sees_imports_anywhere_in_a_module(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import a.b\nfrom c.d import e\nfrom . import f\ndef g():\n    import h\n")

    assert imported_modules(module) == {"a", "c", "h"}
