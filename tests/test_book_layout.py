"""The book's layout as pytest sees it: every chapter is listed in the table of contents
and is committed clean, so the build and nbval execute exactly what the repository
holds; its code stays readable (code cells, modules and functions of bounded length);
its prose speaks to the reader; and every chapter starts with the Colab cell written
from the repository address in _config.yml."""

import ast
import json
import re
import subprocess
import sys

import yaml

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
        assert str(nb.relative_to(ROOT).with_suffix("")) in entries, (
            f"{nb.name} is not in _toc.yml"
        )


def test_notebooks_are_clean_and_import_probdl():
    for nb in notebooks():
        data = json.loads(nb.read_text())
        assert data["metadata"]["kernelspec"]["name"] == "python3", nb.name
        code = [c for c in data["cells"] if c["cell_type"] == "code"]
        assert code, f"{nb.name} has no code"
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), (
            f"{nb.name} has outputs"
        )
        first = next("".join(c["source"]) for c in code if c.get("id") != "colab-setup")
        assert "probdl" in first, f"{nb.name}: the first code cell should import probdl"
        titles = [
            line
            for c in data["cells"]
            if c["cell_type"] == "markdown"
            for line in "".join(c["source"]).splitlines()
            if re.match(r"^# ", line)
        ]
        assert len(titles) == 1, f"{nb.name}: one H1 title expected, found {titles}"


def test_code_cells_are_short():
    for nb in notebooks():
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            if c["cell_type"] == "code":
                n = len("".join(c["source"]).splitlines())
                assert n <= 30, (
                    f"{nb.name} cell {i}: {n} lines of code (split it into compute, "
                    "show, check)"
                )


def test_modules_and_functions_are_short():
    for path in sorted((ROOT / "src" / "probdl").rglob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 400, (
            f"{path.name}: {len(text.splitlines())} lines (split the module)"
        )
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                assert n <= 80, f"{path.name}: {node.name} has {n} lines"


def test_the_book_speaks_to_its_reader():
    words = re.compile(
        r"\b(the issue|this issue|exercise sheet|the sheet|issue tracker)\b", re.I
    )
    for nb in notebooks():
        for c in json.loads(nb.read_text())["cells"]:
            if c["cell_type"] == "markdown":
                hit = words.search("".join(c["source"]))
                assert hit is None, (
                    f"{nb.name}: the text speaks of {hit.group(0)!r}, which the reader "
                    "never sees"
                )


def test_every_chapter_has_the_colab_cell_of_the_configured_repository():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "colab_cell.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bibliography_keys_are_unique():
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), re.M)
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"references.bib defines these keys twice: {dupes}"


def test_bibliography_parses():
    from pybtex.database import parse_file

    entries = parse_file(str(ROOT / "references.bib")).entries
    assert len(entries) >= 20


def test_constraints_pin_versions_that_install_anywhere():
    """constraints.txt (the README's "Reproducing exactly") pins every package by name
    and version: a local wheel path or URL (a `pip freeze` of a venv with a wheel
    installed from a file) makes `pip install -c constraints.txt` fail on every other
    machine."""
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    pins = [
        line.strip()
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    ]
    bad = [
        line
        for line in pins
        if not re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+!\-]+", line)
    ]
    assert not bad, f"constraints.txt lines that are not `name==version`: {bad}"
    names = {re.split(r"[=\[]", line)[0].lower().replace("_", "-") for line in pins}
    assert {"torch", "torchvision", "jupyter-book", "myst-nb"} <= names


def test_licences_and_citation_say_what_may_be_reused():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (
        (ROOT / "LICENSE-TEXT")
        .read_text()
        .startswith("Attribution-ShareAlike 4.0 International")
    )
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (
        cff["cff-version"] == "1.2.0"
        and cff["title"]
        and cff["authors"]
        and cff["message"]
    )
    assert cff["license"] == ["MIT", "CC-BY-SA-4.0"]
    readme = (ROOT / "README.md").read_text()
    for word in (
        "LICENSE",
        "LICENSE-TEXT",
        "CITATION.cff",
        "MNIST",
        "CC BY-SA 3.0",
        "CC BY 4.0",
    ):
        assert word in readme, f"README.md's licence section does not name {word}"
    data_readme = (ROOT / "data" / "README.md").read_text()
    for data_set, licence in (
        ("MNIST/raw/", "CC BY-SA 3.0"),
        ("Energy efficiency", "CC BY 4.0"),
    ):
        assert data_set in data_readme and licence in data_readme, (
            f"data/README.md: {data_set}'s licence"
        )


def test_chapters_use_plain_latex():
    """JupyterLab and Colab render the notebooks' math without the book's MathJax
    configuration: a macro defined only there (\\N, \\E, \\KL, \\ELBO) shows as an error
    or as the wrong symbol."""
    # ... and an accent on an unbraced font command (\hat\mathcal{L}) is a MathJax error
    macro = re.compile(r"\\(KL|ELBO|E|N)(?![A-Za-z])|\\(hat|tilde|bar|widehat)\\math")
    for nb in notebooks():
        for i, c in enumerate(json.loads(nb.read_text())["cells"]):
            hit = (
                macro.search("".join(c["source"]))
                if c["cell_type"] == "markdown"
                else None
            )
            assert hit is None, (
                f"{nb.name} cell {i}: {hit.group(0)} (write \\mathcal{{N}}, "
                f"\\mathbb{{E}})"
            )


def test_no_private_name_crosses_a_module():
    """A name with a leading underscore is a module's own: another module that needs it
    gets a public name (``train.progress_bar``, ``bbb.randn_like``), so each thing has
    one home."""
    package = ROOT / "src" / "probdl"
    modules = {p.stem for p in package.rglob("*.py")}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = set(
            modules
        )  # the package's modules, under the names this file binds them to
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level >= 1
                and node.module is None
            ):
                names |= {a.asname or a.name for a in node.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                bad = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
                assert not bad, (
                    f"{path.name} imports private {bad} from .{node.module or ''}"
                )
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                private = node.attr.startswith("_") and not node.attr.startswith("__")
                assert not (private and node.value.id in names), (
                    f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}"
                )


def _shown_objects():
    """(chapter, file, pyobject) of every literalinclude of a Python object."""
    found = []
    for nb in notebooks():
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        text = "\n".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
        for m in re.finditer(r"```\{literalinclude\} (\S+)\n((?::[^\n]*\n)*)", text):
            options = dict(re.findall(r":(\S+):\s*(.*)", m.group(2)))
            if "pyobject" in options:
                found.append(
                    (
                        nb.stem,
                        (ROOT / "book" / m.group(1)).resolve(),
                        options["pyobject"],
                    )
                )
    return found


def test_package_code_shown_fits_the_rendered_column():
    """Every package object a page shows, as Sphinx reads it and the book's extension
    formats it for the page, has no line wider than the column (88 characters): code
    through ruff at 88, docstrings and comments as written."""
    import importlib.util
    from types import SimpleNamespace

    from sphinx.directives.code import LiteralIncludeReader

    spec = importlib.util.spec_from_file_location(
        "probdl_book", ROOT / "_ext" / "probdl_book.py"
    )
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    shown = _shown_objects()
    assert len(shown) >= 40, shown  # the chapters show the package's code
    wide = []
    for chapter, path, obj in shown:
        reader = LiteralIncludeReader(
            str(path), {"pyobject": obj}, SimpleNamespace(source_encoding="utf-8")
        )
        code, _ = reader.read()
        for line in ext.format_for_page(code).splitlines():
            if len(line) > ext.PAGE_WIDTH:
                wide.append(f"{chapter}: {path.name}::{obj}: {line.strip()[:60]}")
    assert not wide, "\n".join(wide)
    # the formatter is what fits the code: unformatted, some lines are wider
    assert (
        ext.format_for_page("x = f(" + ", ".join(["argument"] * 12) + ")\n").count("\n")
        > 3
    )
