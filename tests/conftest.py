import matplotlib

matplotlib.use("Agg")  # figures are made headless in the unit tests

import pytest  # noqa: E402

from probdl import exact  # noqa: E402


# The conjugate models the estimators of test_vi.py and test_exact.py are checked against.
@pytest.fixture
def blr1():
    x, y = exact.linear_data(20, 0.7, 0.1, seed=0)
    return exact.BayesLinReg(x, y, noise_var=0.1, prior_var=1.0)


@pytest.fixture
def blr3():
    x, y = exact.linear_data(25, [0.5, -1.0, 0.3], 0.2, seed=1)
    return exact.BayesLinReg(x, y, noise_var=0.2, prior_var=2.0)
