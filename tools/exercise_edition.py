"""The exercise edition: the workbook as a student works through it, graded by its own
checks.

The book's source is the one solution edition. What a student writes is marked once,
with nbgrader's delimiters, in the package and in the chapters' solution cells::

    # exercise elbo-ex-kl: the KL divergence between two Gaussians, elementwise
    ### BEGIN SOLUTION
    ...the solution...
    ### END SOLUTION

The line before a region names its exercise (the label of the chapter's ``{exercise}``)
and stays in the student edition as the task. Commands::

    # the student edition in OUT (default _build/exercises): every chapter and a copy
    # of the package, each solution region replaced by a stub that raises
    # NotImplementedError("Exercise <label>: ..."); signatures, docstrings, prose and
    # checks kept
    python tools/exercise_edition.py build [OUT]
    # the same book rendered without solutions (sphinx-exercise's hide_solutions; the
    # package code a chapter shows is the stubbed one) into OUT/site/_build/html
    python tools/exercise_edition.py html [OUT]
    # grade one exercise: run its checks (unit tests) against a package, by default
    # the student edition's OUT/src; exit status 0 when they pass
    python tools/exercise_edition.py grade LABEL [--package OUT/src]
    # every exercise of the book: label, chapter, how it is graded
    python tools/exercise_edition.py list
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EDITION_MARK = ".exercise-edition"  # in a student edition's root: grade its own src/
TASK = re.compile(r"^\s*# exercise ([a-z0-9-]+): (.+)$")
EXERCISE = re.compile(r"```\{exercise\}[^\n]*\n:label: (\S+)")


@dataclass(frozen=True)
class Grading:
    """How an exercise is graded. ``tests``: the pytest node ids whose checks grade the
    package code a student writes (they compare with independent references: closed
    forms, torch.distributions, autograd, brute force); ``wrong``: plausible wrong
    answers, each (file, solution text, wrong text), every one of which the tests must
    reject. An exercise without tests is a derivation with a worked solution (pen and
    paper), or code written in the chapter and checked by the cells after its
    solution."""

    tests: tuple[str, ...] = ()
    wrong: tuple[tuple[str, str, str], ...] = field(default=())


def _graded(tests: str, *wrong: tuple[str, str, str]) -> Grading:
    """``tests``: space-separated node ids under tests/; ``wrong``: (module, right,
    wrong)."""
    ids = tuple(f"tests/{t}" for t in tests.split())
    return Grading(ids, tuple((f"src/probdl/{m}.py", r, w) for m, r, w in wrong))


GRADED = {
    "elbo-ex-kl": _graded(
        "test_vi.py::test_kl_normal_matches_torch_distributions "
        "test_vi.py::test_kl_normal_matches_monte_carlo",
        ("vi", "- 1.0 - torch.log(var_ratio)", "- torch.log(var_ratio)"),
        ("vi", "((mu_q - mu_p) / sigma_p) ** 2 - 1.0", "(mu_q - mu_p) ** 2 - 1.0"),
    ),
    "elbo-ex-estimators": _graded(
        "test_exact.py::test_elbo_terms_match_monte_carlo",
        ("vi", "log_joint(z) - normal_log_prob(z, mu, sigma)", "log_joint(z)"),
        ("vi", "mc_mean(log_lik(z) - kl)", "mc_mean(log_lik(z) + kl)"),
    ),
    "nade-ex-algorithm": _graded(
        "test_nade.py::test_normalised_over_all_binary_vectors "
        "test_nade.py::test_reference_is_the_chain_rule_of_the_conditionals",
        ("nade", "a = a + x[:, d : d + 1] * W[:, d]", "a = a + W[:, d]"),
        ("nade", "h = torch.sigmoid(a)  # h_d", "h = torch.tanh(a)  # h_d"),
    ),
    "bbbr-ex-e": _graded(
        "test_bbb.py::test_elbo_objective_against_torch_distributions "
        "test_bbb_tools.py::test_manual_gradient_matches_autograd "
        "test_bbb_tools.py::test_path_derivative_is_autograd_with_q_stopped "
        "test_bbb.py::test_minibatch_estimate_is_unbiased_for_the_full_data_objective "
        "test_bbb.py::test_closed_and_mc_objectives_agree_in_expectation",
        ("bbb_tools", "sigma * ei + (0.0 if path else 1.0)", "sigma * ei + 0.0"),
        (
            "bbb",
            "elbo = log_lik + weight * surprise",
            "elbo = log_lik - weight * surprise",
        ),
        ("bbb", "* scale\n", "\n"),
    ),
    "vae-ex-loss": _graded(
        "test_vae.py::test_terms_match_torch_distributions "
        "test_vae.py::test_reparameterized_gradients_against_autograd",
        ("vae", "z = reparameterize(mu, sigma, generator=generator)", "z = mu"),
        (
            "vae",
            "kl = kl_normal(mu, sigma).sum(-1)",
            "kl = kl_normal(mu, sigma).mean(-1)",
        ),
    ),
    "vae-ex-encoder": _graded(
        "test_vae.py::test_encode_is_the_encoder_network_written_out",
        ("vae", "torch.exp(0.5 * log_var)\n", "torch.exp(log_var)\n"),
        ("vae", "mu, log_var = h.chunk(2, dim=-1)", "log_var, mu = h.chunk(2, dim=-1)"),
    ),
    "vae-ex-decoder": _graded(
        "test_vae.py::test_terms_match_torch_distributions",
        (
            "vae",
            "Bernoulli(logits=self.decode(z)",
            "Bernoulli(probs=self.decode(z).sigmoid()**2",
        ),
    ),
    "vae-ex-distributions": _graded(
        "test_vae.py::test_q_is_the_encoders_gaussian "
        "test_vae.py::test_encode_is_the_encoder_network_written_out",
        (
            "vae",
            "Normal(mu, sigma, validate_args=False), 1)\n        ### END",
            "Normal(mu, sigma**2, validate_args=False), 1)\n        ### END",
        ),
        (
            "vae",
            "Normal(zero, torch.ones_like(zero), validate_args=False), 1)",
            "Normal(zero, torch.ones_like(zero), validate_args=False), 0)",
        ),
    ),
    "vae-ex-importance": _graded(
        "test_vae.py::"
        "test_importance_estimate_converges_to_quadrature_and_increases_with_k "
        "test_vae.py::test_log_weights_chunking_and_iwae_bound",
        ("vae", "+ prior.log_prob(z) - q.log_prob(z))", "+ prior.log_prob(z))"),
    ),
    "menu-ex-hmc-step": _graded(
        "test_mcmc.py::test_leapfrog_is_reversible_on_a_network "
        "test_mcmc.py::test_leapfrog_energy_error_is_second_order "
        "test_mcmc.py::test_hmc_correlated_gaussian "
        "test_mcmc.py::test_accept_prob_is_metropolis_and_rejects_divergences",
        ("mcmc", "    p = p + 0.5 * eps * grad\n    return", "    return"),
        ("mcmc", "torch.clamp(h0 - h1, max=0.0)", "torch.clamp(h1 - h0, max=0.0)"),
    ),
    "mix-ex-stick": _graded(
        "test_dlgm.py::test_stick_breaking_against_the_product_formula",
        ("dlgm", "gamma * before.exp(), log_left", "gamma * log_left.exp(), log_left"),
    ),
}


# Plausible wrong answers to the exercises whose solutions are chapter code:
# label -> ((chapter, solution text, wrong text), ...). The solution text lies in a
# solution region of that exercise and occurs once in the chapter; with the wrong text
# in its place, the chapter's own checks after the region must stop it with an
# AssertionError (tests/test_exercise_edition.py runs each in the smoke profile).
CHAPTER_WRONG = {
    "bbbr-ex-a": (
        (  # the curve with v = 0 taken for E[y | x]
            "04_bbb_regression",
            "exact = data.regression_mean(torch.tensor([[x_gap]]), 0.02).item()",
            "exact = data.regression_curve(torch.tensor([[x_gap]])).item()",
        ),
        (  # the Gaussian's characteristic function without its 1/2
            "04_bbb_regression",
            "a2, a4 = math.exp(-2 * math.pi**2 * v), math.exp(-8 * math.pi**2 * v)",
            "a2, a4 = math.exp(-4 * math.pi**2 * v), math.exp(-16 * math.pi**2 * v)",
        ),
    ),
    "bbbr-ex-c": (
        (  # the log-likelihood as the loss: a sign
            "04_bbb_regression",
            "    mlp.nll_objective,\n",
            '    lambda m, xb, yb: {"loss": m.log_likelihood(m(xb), yb).mean()},\n',
        ),
    ),
    "bbbr-ex-d": (
        (  # the "prior" network drawn with the posterior's initial width
            "04_bbb_regression",
            'from_prior = bbb.BayesianMLP(sizes, prior, init_sigma=S["prior_sigma"], '
            "**kw)",
            'from_prior = bbb.BayesianMLP(sizes, prior, init_sigma=S["init_sigma"], '
            "**kw)",
        ),
    ),
    "bbbr-ex-f": (
        (  # the predictive from one weight sample, as in training
            "04_bbb_regression",
            'model, x_grid, n_samples=S["n_pred_samples"], generator=gen',
            "model, x_grid, n_samples=1, generator=gen",
        ),
    ),
    "vae-ex-data": (
        (  # the grey images taken as binary
            "06_vae",
            "threshold = data.binarize_threshold(grey)",
            "threshold = grey",
        ),
    ),
    "vae-ex-train": (
        (  # the ELBO as the loss: a sign
            "06_vae",
            "        vae.elbo_objective,\n        x_train,",
            "        lambda m, xb: (t := vae.elbo_objective(m, xb))"
            ' | {"loss": t["elbo"]},\n        x_train,',
        ),
    ),
    "gan-ex-seeds": (
        (  # the setting's options dropped: every setting is the default run
            "10_gan",
            "modes_over_seeds(small, seeds, **options)",
            "modes_over_seeds(small, seeds)",
        ),
    ),
    "gan-ex-parzen-overfit": (
        (  # every sample set the whole pool
            "10_gan",
            'select_parzen_sigma(pool[:n], x_valid, S["sigmas"])\n'
            "    fit[n] = (sigma, gan_eval.parzen_log_likelihood(pool[:n],",
            'select_parzen_sigma(pool, x_valid, S["sigmas"])\n'
            "    fit[n] = (sigma, gan_eval.parzen_log_likelihood(pool,",
        ),
    ),
    "gan-ex-jsd-flat": (
        (  # V(D*, G) = -log 4 + JSD: the factor 2 lost
            "10_gan",
            "value = -math.log(4.0) + 2 * js",
            "value = -math.log(4.0) + js",
        ),
    ),
}


def exercises() -> dict[str, str]:
    """Every ``{exercise}`` label of the book -> its chapter (the notebook's stem)."""
    found = {}
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                for label in EXERCISE.findall("".join(cell["source"])):
                    found[label] = nb.stem
    return found


SOLUTION_START = re.compile(r"```\{solution-start\} (\S+)[^\n]*\n(?::[^\n]*\n)*```")
SOLUTION_END = re.compile(r"```\{solution-end\}[^\n]*\n(?::[^\n]*\n)*```")


def _solution_spans(text: str, inside: str | None):
    """Split a Markdown cell at its solution fences: yields (text, label) pieces, label
    the exercise whose solution the piece belongs to (None outside solutions), starting
    ``inside`` the solution of that label (or None)."""
    pos = 0
    while True:
        fence = (SOLUTION_END if inside else SOLUTION_START).search(text, pos)
        if fence is None:
            yield text[pos:], inside
            return
        yield text[pos : fence.start()], inside
        pos, inside = fence.end(), None if inside else fence.group(1)
        yield "", inside  # the state after the fence


def classify() -> dict[str, str]:
    """How each exercise of the book is graded: ``"unit tests"`` (the package code it
    asks for, checked by :data:`GRADED`'s tests), ``"chapter code"`` (its solution holds
    code cells, checked by the cells after it) or ``"pen and paper"`` (a derivation with
    its worked solution)."""
    kinds = {}
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        inside = None
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                if inside:
                    kinds[inside] = "chapter code"
                continue
            text = "".join(cell["source"])
            for label in re.findall(
                r"```\{solution\} (\S+)", text
            ):  # one cell, no code
                kinds.setdefault(label, "pen and paper")
            for _, state in _solution_spans(text, inside):
                if state and state != inside:
                    kinds.setdefault(state, "pen and paper")
                inside = state
    for label in exercises():
        kinds.setdefault(label, "no worked solution")
        if label in GRADED:
            kinds[label] = "unit tests"
    return kinds


def stub_regions(
    text: str, where: str, only: str | None = None
) -> tuple[str, list[str]]:
    """``text`` with every solution region replaced by a stub that raises
    NotImplementedError naming its exercise (the ``# exercise <label>: <task>`` line
    before it); returns the new text and the labels, in order. ``only``: stub the
    regions of this exercise alone, keep the others' solutions. A region without its
    task line, a nested or an unclosed region is an error that says where."""
    out, labels, inside, keep, last = [], [], False, False, ""
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip() == BEGIN:
            task = TASK.match(last)
            if inside or task is None:
                why = (
                    "a nested region"
                    if inside
                    else "no '# exercise <label>: <task>' line before it"
                )
                raise ValueError(f"{where}:{n}: {BEGIN} with {why}")
            label, what = task.groups()
            inside, keep = True, only is not None and label != only
            if keep:
                out.append(line)
                last = line
                continue
            indent = line[: len(line) - len(line.lstrip())]
            message = (
                f"Exercise {label}: {what}. Grade it: python "
                f"tools/exercise_edition.py grade {label}"
            )
            out.append(f"{indent}raise NotImplementedError({message!r})")
            labels.append(label)
        elif line.strip() == END:
            if not inside:
                raise ValueError(f"{where}:{n}: {END} without {BEGIN}")
            if keep:
                out.append(line)
            inside = keep = False
        elif not inside or keep:
            out.append(line)
        last = line
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out), labels


def stub_package(
    src: Path, dest: Path, only: str | None = None
) -> dict[str, list[str]]:
    """Copy the package from ``src`` to ``dest`` with its solution regions stubbed
    (those of exercise ``only`` alone, when given)."""
    shutil.copytree(
        src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    regions = {}
    for path in sorted(dest.rglob("*.py")):
        where = str(path.relative_to(dest))
        text, labels = stub_regions(path.read_text(encoding="utf-8"), where, only)
        if labels:
            path.write_text(text, encoding="utf-8")
            regions[str(path.relative_to(dest))] = labels
    return regions


def stub_notebook(path: Path, dest: Path) -> list[str]:
    """Write the notebook at ``path`` to ``dest`` with its solution regions stubbed and
    its outputs cleared; return the labels of the regions."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    labels = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        text, found = stub_regions("".join(cell["source"]), f"{path.name} cell {i}")
        if found:
            lines = text.split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
            labels += found
        cell["outputs"], cell["execution_count"] = [], None
    dest.write_text(
        json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return labels


def check_labels(regions: dict[str, list[str]]) -> None:
    """Every region names an exercise of the book, every graded exercise has a
    region."""
    known = exercises()
    named = {label for labels in regions.values() for label in labels}
    unknown = sorted(named - set(known))
    if unknown:
        raise ValueError(
            f"solution regions name exercises the book does not have: {unknown}"
        )
    missing = sorted(set(GRADED) - named)
    if missing:
        raise ValueError(f"graded exercises without a solution region: {missing}")


def build(out: Path) -> dict[str, list[str]]:
    """The student edition in ``out``: chapters, package, tests (the grader) and book
    files."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    regions = {
        f"src/probdl/{k}": v
        for k, v in stub_package(
            ROOT / "src" / "probdl", out / "src" / "probdl"
        ).items()
    }
    (out / "book").mkdir()
    for path in sorted((ROOT / "book").iterdir()):
        if path.suffix == ".ipynb":
            labels = stub_notebook(path, out / "book" / path.name)
            if labels:
                regions[f"book/{path.name}"] = labels
        elif path.is_file():
            shutil.copy2(path, out / "book" / path.name)
    for name in ("tests", "tools", "_ext", "_assets", "benchmarks"):
        shutil.copytree(
            ROOT / name,
            out / name,
            ignore=shutil.ignore_patterns("__pycache__", "results"),
        )
    for name in (
        "_toc.yml",
        "references.bib",
        "pyproject.toml",
        "requirements.txt",
        "constraints.txt",
        "conftest.py",
        "LICENSE",
        "LICENSE-TEXT",
        "README.md",
    ):
        shutil.copy2(ROOT / name, out / name)
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    config = config.replace(
        "    numfig: true\n", "    numfig: true\n    hide_solutions: true\n", 1
    )
    if "hide_solutions: true" not in config:
        raise ValueError(
            "_config.yml: no 'numfig: true' line under sphinx.config to put "
            "hide_solutions beside"
        )
    config = re.sub(
        r"(?m)^title: (.*)$", r"title: \1 (exercise edition)", config, count=1
    )
    (out / "_config.yml").write_text(config, encoding="utf-8")
    (out / EDITION_MARK).write_text(
        "the student edition: grade against src/\n", encoding="utf-8"
    )
    data = out / "data"
    data.symlink_to(
        ROOT / "data", target_is_directory=True
    )  # large: shared, not copied
    check_labels(regions)
    return regions


def strip_solutions(path: Path) -> int:
    """Leave the solutions out of a chapter's page, keeping what they compute: the
    Markdown between each ``{solution-start}`` and its ``{solution-end}`` goes (fences
    included), the code cells between are tagged ``remove-cell`` (run, not shown).
    sphinx-exercise's ``hide_solutions`` alone cannot do it: with gated solutions it
    leaves a ``solution-end`` node that the HTML writer rejects. Returns the solutions
    left out."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells, inside, count = [], None, 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            if inside:
                cell.setdefault("metadata", {}).setdefault("tags", []).append(
                    "remove-cell"
                )
            cells.append(cell)
            continue
        kept = []
        for piece, state in _solution_spans("".join(cell["source"]), inside):
            count += bool(state) and state != inside
            if not inside and piece:
                kept.append(piece)
            inside = state
        text = "".join(kept).strip("\n")
        if text.strip():
            lines = text.split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
            cells.append(cell)
    nb["cells"] = cells
    path.write_text(
        json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return count


def render(out: Path, chapters: list[str] | None = None) -> Path:
    """Build the exercise edition's pages in ``out/site``: the chapters as written
    (their solutions sit in gated solution blocks, which ``hide_solutions`` leaves out),
    the package code they show taken from the stubbed copy, the cells run with the
    solution package (so every figure and number is there). ``chapters``: notebook stems
    to build (default all)."""
    site = out / "site"
    if site.exists():
        shutil.rmtree(site)
    site.mkdir()
    shutil.copytree(
        ROOT / "book",
        site / "book",
        ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
    )
    shutil.copytree(out / "src", site / "src")
    for name in ("_ext", "_assets"):
        shutil.copytree(
            ROOT / name, site / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("_config.yml", "references.bib"):
        shutil.copy2(out / name if name == "_config.yml" else ROOT / name, site / name)
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    strict = chapters is None  # a partial build has links to the chapters it leaves out
    if chapters is not None:
        chapters = [*chapters, "99_bibliography"]
        keep = [f"      - file: book/{c}" for c in chapters]
        head = "format: jb-book\nroot: book/intro\nparts:\n  - caption: Exercises\n"
        toc = head + "    numbered: true\n    chapters:\n" + "\n".join(keep) + "\n"
        for nb in (site / "book").glob("*.ipynb"):
            if nb.stem not in chapters:
                nb.unlink()
    for nb in (site / "book").glob("*.ipynb"):
        strip_solutions(nb)
    (site / "_toc.yml").write_text(toc, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    jb = Path(sys.executable).with_name("jupyter-book")
    subprocess.run(
        [
            str(jb),
            "build",
            str(site),
            *(["-W", "-n"] if strict else []),
            "--keep-going",
        ],
        check=True,
        env=env,
    )
    return site / "_build" / "html" / "index.html"


def solution_cells(notebook: Path, label: str) -> list[int]:
    """The indices of the code cells inside exercise ``label``'s solution in
    ``notebook`` (between its solution-start and solution-end fences)."""
    cells, inside, found = (
        json.loads(notebook.read_text(encoding="utf-8"))["cells"],
        None,
        [],
    )
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            if inside == label:
                found.append(i)
            continue
        for _, state in _solution_spans("".join(cell["source"]), inside):
            inside = state
    return found


def run_chapter(
    notebook: Path,
    package: Path | None = None,
    until: int | None = None,
    profile: str = "smoke",
    timeout: int = 600,
    cwd: Path | None = None,
) -> tuple[int, str, str] | None:
    """Execute the chapter ``notebook`` from its first cell through cell ``until`` (all
    by default) in ``profile``, with ``package`` (a folder holding ``probdl``) first on
    the path, in ``cwd`` (default: the notebook's folder). Returns None when every cell
    ran, else the first failing cell's index, the error's name and its message."""
    import nbclient
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    env = {"PROBDL_PROFILE": profile}
    if package is not None:
        env["PYTHONPATH"] = f"{package}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel starts with this environment
    try:
        where = {"metadata": {"path": str(cwd or notebook.parent)}}
        client = nbclient.NotebookClient(nb, timeout=timeout, resources=where)
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells[: None if until is None else until + 1]):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, i)
                except nbclient.exceptions.CellExecutionError as err:
                    return i, err.ename, err.evalue
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return None


def grade(label: str, package: Path, quiet: bool = False) -> int:
    """Grade exercise ``label`` against the package in ``package`` (a folder that holds
    ``probdl``): run its unit tests, or for an exercise written in its chapter, run the
    chapter beside the package (``package/../book``, the smoke profile) through the end
    of the exercise's solution. Returns 0 when its checks pass."""
    kinds = classify()
    if label not in kinds:
        raise SystemExit(f"no exercise {label!r}; `list` shows them all")
    if kinds[label] == "chapter code":
        book = package.parent / "book"
        notebook = book / f"{exercises()[label]}.ipynb"
        if not notebook.is_file():
            raise SystemExit(f"{notebook} is missing: grade inside an edition's folder")
        last = solution_cells(notebook, label)[-1]
        failed = run_chapter(notebook, package, until=last)
        if failed is None:
            print(f"{label}: the chapter's checks pass")
            return 0
        i, name, message = failed
        print(f"{label}: {notebook.name} stopped in cell {i}: {name}: {message}")
        return 1
    if label not in GRADED:
        raise SystemExit(
            f"{label!r} is a derivation whose worked solution is in the book; graded "
            f"exercises: {', '.join(sorted(GRADED))}, and those written in a chapter "
            "(`list`)."
        )
    env = {
        **os.environ,
        "PYTHONPATH": f"{package}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-x",
        *GRADED[label].tests,
    ]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=quiet, text=True)
    return run.returncode


OWN = ROOT / "src" if (ROOT / EDITION_MARK).exists() else ROOT / "no-such-folder"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "html"):
        p = sub.add_parser(name)
        p.add_argument(
            "out", nargs="?", type=Path, default=ROOT / "_build" / "exercises"
        )
    g = sub.add_parser("grade")
    g.add_argument("label")
    g.add_argument(
        "--package",
        type=Path,
        default=OWN if OWN.is_dir() else ROOT / "_build" / "exercises" / "src",
    )
    sub.add_parser("list")
    args = parser.parse_args(argv)
    if args.command == "list":
        kinds = classify()
        for label, chapter in exercises().items():
            how = kinds[label]
            if label in GRADED:
                how += ": " + " ".join(GRADED[label].tests)
            elif label in CHAPTER_WRONG:
                n = len(CHAPTER_WRONG[label])
                how += f" ({n} wrong answer{'s' if n > 1 else ''} rejected)"
            print(f"{chapter:22} {label:24} {how}")
        return 0
    if args.command == "grade":
        if not (args.package / "probdl").is_dir():
            raise SystemExit(
                f"{args.package} holds no probdl package: run `build` first, or pass "
                "--package"
            )
        return grade(args.label, args.package.resolve())
    regions = build(args.out.resolve())
    for where, labels in regions.items():
        print(f"{where}: {', '.join(labels)}")
    if args.command == "html":
        site = render(args.out.resolve())
        print(f"the exercise edition's pages: {site}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
