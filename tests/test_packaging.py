"""Package metadata stays in step with the code."""

from __future__ import annotations

import tomllib

import aura

from .conftest import ROOT


def test_the_package_version_is_the_one_aura_reports() -> None:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    assert project["version"] == aura.__version__


def test_every_aura_subpackage_is_packaged() -> None:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        packages = set(tomllib.load(fh)["tool"]["setuptools"]["packages"])
    found = {".".join(p.relative_to(ROOT).parts[:-1])
             for p in (ROOT / "aura").rglob("__init__.py")}
    assert found <= packages
