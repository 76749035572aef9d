import matplotlib.pyplot as plt
import pytest
import torch

from probdl import plotting, train


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history():
    h = train.History()
    for i in range(1, 101):
        h.steps.append({"step": i, "epoch": 0, "loss": 1.0 / i, "kl": 0.5})
        if i % 25 == 0:
            h.evals.append({"step": i, "loss": 1.2 / i, "valid nll": 2.0 / i})
    return h


def test_curves_of_step_and_evaluation_terms():
    fig = plotting.plot_curves(history(), ["loss", "kl", "valid nll"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "kl", "valid nll"]
    assert len(axes[0].lines) == 3  # raw, smoothed, evaluation markers
    with pytest.raises(KeyError, match="cannot plot"):
        plotting.plot_curves(history(), ["elbo"])


def test_live_curves_outside_a_notebook_keep_the_final_figure():
    live = plotting.LiveCurves(["loss"], every_s=0.0)
    h = history()
    live.update(h)
    live.close(h)
    assert live.fig is not None and live.handle is None


def test_smooth_is_a_trailing_mean():
    assert plotting.smooth([1, 2, 3, 4], 2).tolist() == [1.0, 1.5, 2.5, 3.5]


def test_image_grid_and_rows():
    x = torch.rand(10, 784)
    fig = plotting.image_grid(x, nrow=5, title="digits")
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (2 * 29 + 1, 5 * 29 + 1)
    with pytest.raises(ValueError, match="reshape"):
        plotting.image_grid(torch.rand(4, 100))
    fig = plotting.image_rows({"a": x[:4], "b": x[4:8]})
    assert len(fig.axes) == 2


def test_predictive_band():
    x = torch.linspace(0, 1, 50)
    fig = plotting.predictive_band(
        x,
        torch.sin(x),
        0.1 * torch.ones(50),
        x_train=x[:10],
        y_train=x[:10],
        truth=torch.sin,
    )
    ax = fig.axes[0]
    assert len(ax.collections) >= 2  # two bands
    with pytest.raises(ValueError, match="same length"):
        plotting.predictive_band(x, x[:10], x)
