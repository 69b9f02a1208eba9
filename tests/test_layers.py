"""The package's layers point down only: import-linter's contract in pyproject.toml, and that it can fail."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


def lint(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the project's contract over the package found under ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def copy_of_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "saga_sr_plugin", tmp_path / "saga_sr_plugin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "saga_sr_plugin"


def test_the_package_keeps_its_layers(tmp_path):
    result = lint(ROOT, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_model_module_importing_the_cli_breaks_the_contract_and_is_named(tmp_path):
    package = copy_of_package(tmp_path)
    with open(package / "models" / "conditioners.py", "a") as f:
        f.write("\nfrom ..interface import cli  # noqa: E402,F401\n")
    result = lint(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "saga_sr_plugin.models.conditioners -> saga_sr_plugin.interface.cli" in result.stdout, result.stdout


def test_siblings_stay_independent_and_new_top_level_modules_need_a_layer(tmp_path):
    package = copy_of_package(tmp_path)
    with open(package / "inference" / "sampling.py", "a") as f:
        f.write("\nfrom ..captioning import qwen2_audio  # noqa: E402,F401\n")
    (package / "helpers.py").write_text('"""A module nobody gave a layer."""\n')
    result = lint(tmp_path, tmp_path)
    assert result.returncode != 0
    assert "saga_sr_plugin.inference.sampling -> saga_sr_plugin.captioning.qwen2_audio" in result.stdout, result.stdout
    assert "saga_sr_plugin.helpers" in result.stdout, result.stdout
