"""The packaging and the README keep up with the code: packages listed, settings documented, two commands."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from app.settings import Settings

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.M | re.S)
    assert match is not None, f"README has no '## {title}'"
    return match.group(1)


def test_every_python_package_is_in_the_wheel() -> None:
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("app", "model")
        for init in (ROOT / top).rglob("__init__.py")
    }

    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages"


def test_the_docker_context_holds_every_folder_the_wheel_is_built_from() -> None:
    pytest.importorskip("docker")
    sys.path.insert(0, str(ROOT / "scripts"))
    from docker_context import context_files

    sent = {Path(name).parts[0] for name in context_files()}
    setuptools = PYPROJECT["tool"]["setuptools"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *setuptools["package-dir"].values()}
    needed |= {package.split(".")[0] for package in setuptools["packages"]}

    assert needed <= sent, f"add {sorted(needed - sent)} to .dockerignore"
    assert not {".venv", ".git", "tests", "bench"} & sent


def test_templates_and_static_are_installed_inside_app() -> None:
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]

    assert mapped == {
        "app.templates": "templates",
        "app.static": "static",
        "app.translations": "translations",
    }


def test_app_paths_find_the_top_level_folders_in_a_checkout() -> None:
    from app.paths import STATIC_DIR, TEMPLATES_DIR

    assert TEMPLATES_DIR == ROOT / "templates"
    assert STATIC_DIR == ROOT / "static"


def test_runtime_dependencies_hold_nothing_test_only() -> None:
    runtime = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    test = PYPROJECT["project"]["optional-dependencies"]["test"]

    for name in ("torch", "transformers", "pytest", "playwright", "hypothesis", "ruff", "mypy"):
        assert name not in runtime
    assert "torch==2.13.0" in test
    assert PYPROJECT["project"]["scripts"] == {"glassbox": "app.cli:main"}


def test_the_quick_start_has_exactly_two_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", section("Quick start"), flags=re.S)
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]

    assert commands == ["pip install . && glassbox serve", "pip install -e '.[test]' && pytest"]
    assert "apt-get install -y chromium" in section("Quick start")


def test_the_configuration_table_has_every_setting() -> None:
    table = section("Configuration")

    for name, field in Settings.model_fields.items():
        row = f"| `--{name.replace('_', '-')}` | `GLASSBOX_{name.upper()}` |"
        assert row in table
        default = field.default if not isinstance(field.default, float) else f"{field.default:g}"
        assert f"{row} `{default}` |" in table
