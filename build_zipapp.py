#!/usr/bin/env python3
"""Build dist/aura.pyz: aura and its pure-Python dependencies in one executable file.

    python3 build_zipapp.py                   # resolve pure wheels for Python 3.11 with pip
    python3 build_zipapp.py --from-installed  # vendor the copies installed here (offline)

- Dependencies are pure wheels (``py3-none-any``) resolved for the Python floor, so the pyz
  runs on any platform. A dependency without a pure wheel fails the build loudly; compiled
  files (``.so``, ``.pyd``) are refused because a zip cannot load them anyway (websockets
  falls back to its pure-Python implementation).
- Every module is also stored as bytecode next to its source (``name.pyc``, the layout
  zipimport reads), compiled by this interpreter as unchecked-hash pycs: the pyz starts
  fast on this Python version, and other versions fall back to the sources.
- The archive is deterministic: sorted names, fixed timestamps (SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
import py_compile
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
FLOOR = "3.11"
MAIN = """\
# The entry point of aura.pyz; prog_name/complete_var keep completion working when the
# file is called aura.pyz or renamed.
from aura.cli.app import main

main()
"""
COMPILED_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


def dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return list(tomllib.load(fh)["project"]["dependencies"])


def resolve_wheels(site: Path, requirements: list[str]) -> None:
    """Install pure wheels for the floor Python into ``site`` with pip."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(site), "--only-binary=:all:", "--platform", "any",
               "--implementation", "py", "--abi", "none", "--python-version", FLOOR,
               "--no-compile", *requirements]
    result = subprocess.run(command)
    if result.returncode != 0:
        sys.exit("build_zipapp: pip could not resolve pure wheels for "
                 f"{', '.join(requirements)} (is the package index reachable?)")


def _top_name(requirement: str) -> str:
    for sep in "<>=!~;[ ":
        requirement = requirement.split(sep)[0]
    return requirement


def copy_installed(site: Path, requirements: list[str]) -> None:
    """Copy the installed distributions (and what they require) into ``site``."""
    seen: set[str] = set()
    todo = [_top_name(r) for r in requirements]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"build_zipapp: {name} is not installed (needed by --from-installed)")
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(_top_name(requirement))
        for file in dist.files or []:
            source = Path(dist.locate_file(file))
            parts = Path(file).parts
            if ".." in parts or parts[0] == "bin" or "__pycache__" in parts:
                continue
            if source.suffix in COMPILED_SUFFIXES or not source.is_file():
                continue
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def clean(site: Path) -> None:
    """Drop what a zip cannot use; refuse compiled extensions."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for cache in list(site.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    for path in site.rglob("*"):
        if path.suffix in COMPILED_SUFFIXES:
            if path.parent.name == "websockets" or "speedups" in path.name:
                path.unlink()  # optional C speedups; the pure fallback is used
            else:
                sys.exit(f"build_zipapp: {path.relative_to(site)} is a compiled extension; "
                         "aura.pyz must stay pure Python")


def add_aura(site: Path) -> None:
    for path in sorted((ROOT / "aura").rglob("*.py")):
        target = site / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (site / "__main__.py").write_text(MAIN)


def compile_all(site: Path) -> None:
    """``name.pyc`` next to ``name.py``: the layout zipimport looks for."""
    for path in sorted(site.rglob("*.py")):
        try:
            py_compile.compile(str(path), cfile=str(path.with_suffix(".pyc")), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        except py_compile.PyCompileError as exc:
            # A module written for a newer Python than this one: keep its source only.
            print(f"build_zipapp: not compiled: {path.relative_to(site)}: {exc.msg}",
                  file=sys.stderr)


def write_zip(site: Path, output: Path) -> None:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01
    date_time = time.gmtime(max(epoch, 315532800))[:6]
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(".tmp")
    with tmp.open("wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in site.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(path.relative_to(site).as_posix(), date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    mode = tmp.stat().st_mode
    tmp.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    tmp.replace(output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", "-o", type=Path, default=ROOT / "dist" / "aura.pyz")
    parser.add_argument("--from-installed", action="store_true",
                        help="vendor the dependencies installed in this Python (no network)")
    parser.add_argument("--no-compile", action="store_true", help="sources only")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("pip") is None and not args.from_installed:
        sys.exit("build_zipapp: pip is needed (or use --from-installed)")
    requirements = dependencies()
    with tempfile.TemporaryDirectory(prefix="aura-pyz-") as tmp:
        site = Path(tmp) / "site"
        site.mkdir()
        if args.from_installed:
            copy_installed(site, requirements)
        else:
            resolve_wheels(site, requirements)
        clean(site)
        add_aura(site)
        if not args.no_compile:
            compile_all(site)
        write_zip(site, args.output)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    args.output.with_name(args.output.name + ".sha256").write_text(
        f"{digest}  {args.output.name}\n")
    size = args.output.stat().st_size
    print(f"built {args.output} ({size / 1e6:.1f} MB, sha256 {digest[:16]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
