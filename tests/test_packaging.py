"""`pip install .` (not only an editable install) ships every file the page serves."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_file_of_the_page_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["web"]
    web = ROOT / "web"
    files = [p.relative_to(web).as_posix() for p in web.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"]
    # setuptools' globs do not cross a "/": "static/*" leaves out static/fonts/.
    missing = [f for f in files if not any(fnmatch(f, pattern) and f.count("/") == pattern.count("/")
                                           for pattern in patterns)]
    assert files and not missing, missing
