"""The book's layout as pytest sees it: every chapter is listed in the table of contents and is
committed clean, so the build and nbval execute exactly what the repository holds."""

import json
import re

from probdl import config

ROOT = config.REPO_ROOT


def notebooks():
    return sorted((ROOT / "book").glob("*.ipynb"))


def test_every_notebook_is_in_the_toc_and_every_entry_exists():
    toc = (ROOT / "_toc.yml").read_text()
    entries = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", toc, re.M)
    for entry in entries:
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".ipynb", ".md")), (
            f"_toc.yml lists missing {entry}"
        )
    for nb in notebooks():
        assert str(nb.relative_to(ROOT).with_suffix("")) in entries, f"{nb.name} is not in _toc.yml"


def test_notebooks_are_clean_and_import_probdl():
    for nb in notebooks():
        data = json.loads(nb.read_text())
        assert data["metadata"]["kernelspec"]["name"] == "python3", nb.name
        code = [c for c in data["cells"] if c["cell_type"] == "code"]
        assert code, f"{nb.name} has no code"
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), f"{nb.name} has outputs"
        first = "".join(code[0]["source"])
        assert "probdl" in first, f"{nb.name}: the first code cell should import probdl"
        titles = [
            line
            for c in data["cells"]
            if c["cell_type"] == "markdown"
            for line in "".join(c["source"]).splitlines()
            if re.match(r"^# ", line)
        ]
        assert len(titles) == 1, f"{nb.name}: one H1 title expected, found {titles}"
