"""docs/architecture.md names every module of the package (issue 12/15: the map stays whole).

A module counts as named by its file name (``uploads.py``); a core module also by its bare
name as the layer diagram writes it (``_usage``), a CLI command's module as `` `query` ``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "llama_index_gemini_embed"


def unnamed(doc: str) -> list[str]:
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        if path.parent == PACKAGE:
            bare = re.search(rf"(?<![\w.]){re.escape(path.stem)}(?![\w.])", doc)
        elif path.parent.name == "cli":
            bare = re.search(rf"`{re.escape(path.stem)}`", doc)
        else:
            bare = None
        if path.name not in doc and bare is None:
            missing.append(path.relative_to(PACKAGE).as_posix())
    return missing


def test_every_module_is_named_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert unnamed(doc) == [], "name each module in docs/architecture.md (one line)"
