"""Write (or check) what follows the repository's address: ``CITATION.cff``'s
``repository-code`` and the first cell of every chapter: on Colab only, it clones the
workbook from the repository named in ``_config.yml`` (``repository.url`` and
``branch``, the one place the address is kept), puts ``src`` on the path (no editable
install: that would need a kernel restart) and points ``PROBDL_DATA`` at the shipped
data. Everywhere else it does nothing; the book hides it (``remove-cell``).

    # update every notebook in book/ and CITATION.cff
    python tools/colab_cell.py
    # exit 1 if a notebook's cell or CITATION.cff is stale
    python tools/colab_cell.py --check
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELL_ID = "colab-setup"


def repository() -> tuple[str, str]:
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)+)", text, re.M)
    if block is None:
        raise SystemExit("_config.yml has no repository: section with url and branch")
    fields = dict(re.findall(r"^\s+(\w+):\s*(\S+)", block.group(1), re.M))
    return fields["url"].strip("'\""), fields.get("branch", "main").strip("'\"")


def cell_source(url: str, branch: str) -> str:
    return f'''# On Colab only: fetch the workbook, put its package and data on the path
# (hidden in the book).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    repo = "{url}"
    branch, dest = "{branch}", "probdl-workbook"
    if not os.path.isdir(dest):
        clone = ["git", "clone", "--depth", "1", "--branch", branch, repo, dest]
        subprocess.run(clone, check=True)
    sys.path.insert(0, os.path.abspath(os.path.join(dest, "src")))
    os.environ["PROBDL_DATA"] = os.path.abspath(os.path.join(dest, "data"))
    print("Training is much faster on a GPU: Runtime > Change runtime type > GPU.")'''


def expected_cell(url: str, branch: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": CELL_ID,
        "metadata": {"tags": ["remove-cell"]},
        "outputs": [],
        "source": cell_source(url, branch).splitlines(keepends=True),
    }


def citation(url: str, check: bool) -> list[str]:
    """Keep CITATION.cff's repository-code equal to repository.url; the stale file's
    name, if any."""
    path = ROOT / "CITATION.cff"
    text = path.read_text(encoding="utf-8")
    new = re.sub(
        r"^repository-code: .*$", f'repository-code: "{url}"', text, count=1, flags=re.M
    )
    if new == text:
        return []
    if not check:
        path.write_text(new, encoding="utf-8")
    return [path.name]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only check; exit 1 if a notebook is stale"
    )
    args = parser.parse_args(argv)
    url, branch = repository()
    cell = expected_cell(url, branch)
    stale = citation(url, args.check)
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c.get("id") != CELL_ID]
        if (
            nb["cells"]
            and nb["cells"][0] == cell
            and len(cells) == len(nb["cells"]) - 1
        ):
            continue
        stale.append(path.name)
        if not args.check:
            nb["cells"] = [cell] + cells
            path.write_text(
                json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
            )
    if args.check and stale:
        print(
            f"stale or missing repository address in {', '.join(stale)}: run python "
            "tools/colab_cell.py"
        )
        return 1
    print(
        f"{'checked' if args.check else 'updated'} {len(stale)} file(s)"
        if stale
        else "all files up to date"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
