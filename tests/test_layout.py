"""How the packages fit together: the worker never imports training/, scripts/, client/,
dashboard/ or mcp_worker/; nothing edits the import path.

The image holds the runtime packages only (tests/test_dockerfile.py), so a runtime module that
imported ``training`` or ``client`` would fail there; and the code is imported from the repository
root (pytest's ``pythonpath``, ``python -m scripts.<name>``), never through import-path edits.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_handler import run_in_repo, worker_env

RUNTIME_PACKAGES = ("worker", "models", "positioning", "rules", "storage")
# Starts the worker as RunPod does (import handler), then imports every other runtime module too,
# and names the modules of the development-only packages that got loaded.
IMPORT_PROBE = """
import importlib, json, pkgutil, sys
import handler
for package in sys.argv[1:]:
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        importlib.import_module(info.name)
DEV_ONLY = ("training", "scripts", "client", "dashboard", "mcp_worker")
loaded = [name for name in sys.modules if name.split(".")[0] in DEV_ONLY]
print(json.dumps(sorted(loaded)))
"""


@pytest.mark.slow
def test_the_worker_never_imports_training_scripts_or_client(tmp_path: Path) -> None:
    env = worker_env(
        tmp_path / "no-models", tmp_path / "data"
    )  # no models: the worker still starts
    completed = run_in_repo(["-c", IMPORT_PROBE, *RUNTIME_PACKAGES], env, 180)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


def _edits_the_import_path(tree: ast.AST) -> list[int]:
    """Lines that use the ``path`` attribute of ``sys``: inserting, appending and assigning all do."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]


def test_no_python_file_edits_the_import_path() -> None:
    """Also the code that tests hand to child interpreters: string constants are parsed too."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .git, a virtual environment, tool caches
        name = relative.as_posix()
        tree = ast.parse(path.read_text(), name)
        lines = _edits_the_import_path(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    child = ast.parse(node.value)
                except (SyntaxError, ValueError):  # prose, or text no parser takes
                    continue
                lines += [node.lineno] * len(_edits_the_import_path(child))
        found += [f"{name}:{line}" for line in lines]
    assert not found, f"import-path edits (run from the repository root instead): {found}"
