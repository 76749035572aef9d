"""Tests of probdl.diagnostics: the rank-normalized split-R-hat and the bulk and tail
effective sample sizes of Vehtari et al. (2021), against values ArviZ computes on the
same draws, against a direct implementation of the paper's definitions (explicit ranks,
lag sums and loops), and against what the estimators must show (chains that differ in
scale only, an AR(1) chain's known effective sample size, invariance under monotone
maps)."""

import math
from statistics import NormalDist

import numpy as np
import pytest
import torch

from probdl import diagnostics, mcmc


def lcg_normals(n: int, seed: int) -> np.ndarray:
    """Standard normals from a 48-bit linear congruential generator and Box-Muller: the
    same numbers on every platform and library version, so that recorded values stay
    valid."""
    state, out = seed, []
    while len(out) < n:
        u = []
        for _ in range(2):
            state = (25214903917 * state + 11) % 2**48
            u.append((state + 0.5) / 2**48)
        r = math.sqrt(-2 * math.log(u[0]))
        out += [r * math.cos(2 * math.pi * u[1]), r * math.sin(2 * math.pi * u[1])]
    return np.array(out[:n])


def ar1_chains(n: int, m: int, a: float, seed: int) -> np.ndarray:
    """m stationary AR(1) chains x_t = a x_(t-1) + sqrt(1 - a^2) e_t of length n, (n,
    m)."""
    e = lcg_normals(n * m, seed).reshape(n, m)
    x = np.empty((n, m))
    x[0] = e[0]
    for t in range(1, n):
        x[t] = a * x[t - 1] + math.sqrt(1 - a * a) * e[t]
    return x


CASES = {
    "ar1": lambda: ar1_chains(
        301, 4, 0.8, 1
    ),  # an odd length: the middle draw is dropped
    "scale": lambda: ar1_chains(200, 4, 0.2, 2) * np.array([1, 1, 1, 2.0]),
    "heavy": lambda: ar1_chains(151, 3, 0.5, 3) ** 3,
}
# arviz_stats 0.8.0, array_stats.rhat(x.T, method="rank"), rhat(method="split"),
# ess(method="mean"), ess(method="bulk"), ess(method="tail", prob=0.05), on the draws
# above
ARVIZ = {
    "ar1": (
        1.0303625618692187,
        1.0298193929796386,
        153.3821132351704,
        154.26174462764573,
        326.2547391151739,
    ),
    "scale": (
        1.0721920605451354,
        1.0013930133794064,
        347.18906830658545,
        366.7248694650406,
        74.82502830151165,
    ),
    "heavy": (
        1.0120255932341764,
        1.0113328021492884,
        203.56555852151217,
        163.1775356262196,
        259.20358044526057,
    ),
}


def ours(x: np.ndarray) -> list[float]:
    t = torch.from_numpy(x)
    d = diagnostics
    return [float(f(t)) for f in (d.rhat, d.split_rhat, d.ess, d.ess_bulk, d.ess_tail)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_against_arviz(case):
    torch.testing.assert_close(
        torch.tensor(ours(CASES[case]()), dtype=torch.float64),
        torch.tensor(ARVIZ[case], dtype=torch.float64),
        rtol=1e-9,
        atol=0,
    )


# --- the paper's definitions, written out directly ------------------------------------


def ref_split(x):
    """Each chain's first and last halves as chains of their own (middle draw
    dropped)."""
    half = len(x) // 2
    return [list(c[:half]) for c in x.T] + [list(c[len(x) - half :]) for c in x.T]


def ref_rank_normal(chains):
    pooled = [v for c in chains for v in c]
    s = len(pooled)

    def z(v):
        rank = sum(u < v for u in pooled) + (sum(u == v for u in pooled) + 1) / 2
        return NormalDist().inv_cdf((rank - 3 / 8) / (s - 3 / 4 + 1))

    return [[z(v) for v in c] for c in chains]


def ref_rhat(chains):
    n = len(chains[0])
    means = [sum(c) / n for c in chains]
    w = sum(
        sum((v - mu) ** 2 for v in c) / (n - 1) for c, mu in zip(chains, means)
    ) / len(chains)
    grand = sum(means) / len(means)
    b = n * sum((mu - grand) ** 2 for mu in means) / (len(means) - 1)
    return math.sqrt(((n - 1) / n * w + b / n) / w)


def ref_ess(chains):
    """Vehtari et al. (2021), eqs. 10-11, with Geyer's initial monotone sequence as Stan
    sums it."""
    m, n = len(chains), len(chains[0])
    means = [sum(c) / n for c in chains]
    acov = [
        [sum((c[i] - mu) * (c[i + t] - mu) for i in range(n - t)) / n for t in range(n)]
        for c, mu in zip(chains, means)
    ]
    w = sum(a[0] * n / (n - 1) for a in acov) / m
    grand = sum(means) / m
    var_plus = (n - 1) / n * w + sum((mu - grand) ** 2 for mu in means) / (m - 1)
    rho = [1 - (w - sum(a[t] for a in acov) / m) / var_plus for t in range(n)]
    rho[0] = 1.0
    # Geyer's initial positive sequence: pairs P_k = rho_2k + rho_2k+1 while positive
    # (Stan reads lags up to n - 2); the even lag of the first pair left out is added
    # when it is positive
    pairs, even, odd, t = [rho[0] + rho[1]], 1.0, rho[1], 1
    while t < n - 3 and even + odd > 0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd > 0:
            pairs.append(even + odd)
        t += 2
    if (
        even + odd > 0
    ):  # every pair positive: the last one read counts by its even lag only
        pairs.pop()
    monotone = [
        min(pairs[: i + 1]) for i in range(len(pairs))
    ]  # initial monotone sequence
    tau = -1 + 2 * sum(monotone) + max(even, 0.0)
    return m * n / max(tau, 1 / math.log10(m * n))


def test_against_the_papers_definitions():
    for case in ("ar1", "heavy"):
        x = CASES[case]()[:61]  # short: the direct sums are quadratic
        split = ref_split(x)
        folded_about = float(np.median(np.array(split)))
        folded = [[abs(v - folded_about) for v in c] for c in split]
        lo, hi = np.quantile(x, [0.05, 0.95])
        expect = [
            max(ref_rhat(ref_rank_normal(split)), ref_rhat(ref_rank_normal(folded))),
            ref_rhat(split),
            ref_ess(split),
            ref_ess(ref_rank_normal(split)),
            min(ref_ess(ref_split((x <= q).astype(float))) for q in (lo, hi)),
        ]
        torch.testing.assert_close(
            torch.tensor(ours(x), dtype=torch.float64),
            torch.tensor(expect, dtype=torch.float64),
            rtol=1e-9,
            atol=0,
        )


def test_rank_rhat_sees_chains_that_differ_in_scale_only():
    """Three chains of sd 1 and one of sd 2, all centred at 0 (the case Vehtari et al.
    built the tail R-hat for): the classic split-R-hat stays near 1, the folded draws'
    R-hat does not. With 4 x 2000 independent draws R-hat's sampling error is of order 1
    / n, far below the gaps."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 4, generator=g, dtype=torch.float64) * torch.tensor(
        [1, 1, 1, 2.0]
    )
    assert diagnostics.split_rhat(x) < 1.005
    assert diagnostics.rhat(x) > 1.05
    # a shift of half an sd in one chain shows in both
    y = torch.randn(2000, 4, generator=g, dtype=torch.float64) + torch.tensor(
        [0, 0, 0, 0.5]
    )
    assert diagnostics.rhat(y) > 1.01 and diagnostics.split_rhat(y) > 1.01
    # agreeing chains pass the 1.01 threshold
    assert (
        diagnostics.rhat(torch.randn(2000, 4, generator=g, dtype=torch.float64)) < 1.01
    )


def test_ess_of_an_ar1_chain_is_its_known_value():
    """An AR(1) chain with coefficient a has integrated autocorrelation time (1 + a) /
    (1 - a). The estimate's relative error is about sqrt(2 (2 M + 1) / N) for N draws
    and a summation window of M lags (Sokal 1997); Geyer's truncation stops within M = 5
    tau lags here (the autocorrelation a^t is below 1 % by then), and the tolerance is
    4.5 times that error."""
    a, n, m = 0.6, 20000, 4
    x = torch.from_numpy(ar1_chains(n, m, a, 7))
    tau = (1 + a) / (1 - a)
    tol = 4.5 * math.sqrt(2 * (10 * tau + 1) / (n * m))
    for f in (diagnostics.ess, diagnostics.ess_bulk, mcmc.ess):
        assert abs(float(f(x)) / (n * m / tau) - 1) < tol, (
            f.__name__,
            float(f(x)),
            n * m / tau,
        )
    iid = torch.from_numpy(lcg_normals(n * m, 8).reshape(n, m))  # tau = 1, M = 2
    assert abs(float(diagnostics.ess_bulk(iid)) / (n * m) - 1) < 4.5 * math.sqrt(
        2 * 5 / (n * m)
    )


def test_rank_diagnostics_are_invariant_under_monotone_maps():
    x = torch.from_numpy(CASES["heavy"]())
    for f in (diagnostics.rhat, diagnostics.ess_bulk, diagnostics.ess_tail):
        torch.testing.assert_close(f(torch.exp(x / 4)), f(x), rtol=1e-12, atol=0)
    assert not torch.isclose(
        diagnostics.ess(torch.exp(x / 4)), diagnostics.ess(x), rtol=1e-3
    )


def test_shapes_and_errors():
    x = torch.randn(40, 3, 5, 2)
    out = diagnostics.convergence(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == dict.fromkeys(out, (5, 2))
    assert torch.equal(mcmc.rhat(x), out["rhat"])  # re-exported
    with pytest.raises(ValueError, match="n >= 4, chains"):
        diagnostics.rhat(torch.randn(3, 2))
