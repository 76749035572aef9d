import shutil

import matplotlib

matplotlib.use("Agg")  # figures are made headless in the unit tests

import pytest  # noqa: E402
from browser_support import CHROMIUM_ARGS, skip_or_fail  # noqa: E402

from probdl import config, exact  # noqa: E402


# Every unit test runs with one intra-op thread: the models are small, and on a busy
# 2-core machine torch's default threads make them several times slower. A test that
# needs more sets them itself with config.torch_threads; the notebooks (nbval) are not
# affected.
@pytest.fixture(autouse=True)
def one_thread():
    with config.torch_threads(1):
        yield


# The conjugate models the estimators of test_vi.py and test_exact.py are checked
# against.
@pytest.fixture
def blr1():
    x, y = exact.linear_data(20, 0.7, 0.1, seed=0)
    return exact.BayesLinReg(x, y, noise_var=0.1, prior_var=1.0)


@pytest.fixture
def blr3():
    x, y = exact.linear_data(25, [0.5, -1.0, 0.3], 0.2, seed=1)
    return exact.BayesLinReg(x, y, noise_var=0.2, prior_var=2.0)


# Headless Chromium for the browser checks (tests/browser_support.py says how).
@pytest.fixture(scope="session")
def browser():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        skip_or_fail(
            "Chromium is not installed: `apt-get install chromium` (Debian) to run the "
            "browser checks"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail(
            "the playwright package is missing: `pip install -r requirements.txt`",
            under_ci=True,
        )
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
