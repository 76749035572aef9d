"""Headless Chromium for the browser checks (test_rendered_book.py, test_jupyterlab.py):
Debian's chromium driven by playwright, every host but this machine unreachable. Where
either is missing the checks skip with a message, unless PROBDL_REQUIRE_BROWSER=1 (set
by .ci/run) makes it a failure; under CI (``CI`` set) a missing browser is always a
failure, since .ci/run installs it. The ``browser`` fixture is in conftest.py."""

import json
import os
import re
from pathlib import Path

import pytest

BROWSER_REQUIRED = os.environ.get("PROBDL_REQUIRE_BROWSER", "") == "1"
CHROMIUM_ARGS = [
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def skip_or_fail(reason: str, *, under_ci: bool = False):
    if BROWSER_REQUIRED or (under_ci and os.environ.get("CI")):
        pytest.fail(f"{reason} (PROBDL_REQUIRE_BROWSER=1 or CI makes this a failure)")
    pytest.skip(reason)


def exercise_count(stem: str) -> int:
    """How many exercises chapter ``stem`` states (``{exercise}`` blocks in its Markdown
    cells): what the rendered page and the JupyterLab view must both show."""
    root = Path(__file__).resolve().parents[1]
    nb = json.loads((root / "book" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    text = "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"
    )
    return len(re.findall(r"^[`:]{3,}\{exercise\}", text, flags=re.M))
