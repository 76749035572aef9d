import warnings

import pytest
import torch

from probdl import train


def linear_problem(n=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    w = torch.tensor([[1.0], [-2.0], [0.5]])
    y = x @ w + 0.1 * torch.randn(n, 1, generator=g)
    return x, y, w


def mse(model, x, y):
    err = ((model(x) - y) ** 2).mean()
    return {"loss": err, "mse": err, "const": 1.0}


def test_small_regression_converges():
    x, y, w = linear_problem()
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    h = train.fit(model, mse, (x, y), epochs=20, batch_size=50, lr=0.05, progress=False)
    assert len(h) == 20 * 20 and h.steps[-1]["epoch"] == 19
    assert torch.allclose(model.weight.detach().T, w, atol=0.03)
    assert h.mean("mse", last=20) < 0.015  # the noise variance is 0.01
    assert h.values("const").eq(1.0).all() and h.names() == ["loss", "mse", "const"]


def test_same_generator_same_run():
    x, y, _ = linear_problem()
    params = []
    for _ in range(2):
        torch.manual_seed(1)
        model = torch.nn.Linear(3, 1)
        train.fit(
            model,
            mse,
            (x, y),
            steps=30,
            batch_size=32,
            progress=False,
            generator=torch.Generator().manual_seed(9),
        )
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(params[0], params[1])


def test_evaluations_and_early_stopping_restore_the_best():
    x, y, _ = linear_problem()
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    values = iter([5.0, 3.0, 4.0, 4.5, 6.0, 7.0])
    snapshots = []

    def evaluate(m):
        assert not m.training and not torch.is_grad_enabled()
        snapshots.append(m.weight.detach().clone())
        return {"score": next(values)}

    h = train.fit(
        model,
        mse,
        (x, y),
        steps=1000,
        batch_size=100,
        eval_every=10,
        eval_fn=evaluate,
        early_stopping=("score", 3),
        progress=False,
    )
    assert h.stopped_early and len(h.evals) == 5 and len(h) == 50
    assert h.best["score"] == 3.0 and h.best["step"] == 20
    assert torch.equal(model.weight.detach(), snapshots[1]), (
        "the best parameters are restored"
    )
    assert model.training


def test_transform_applies_to_the_first_tensor():
    seen = []

    def objective(model, xb):
        seen.append(xb)
        return {"loss": (model(xb) ** 2).mean()}

    train.fit(
        torch.nn.Linear(2, 1),
        objective,
        torch.ones(10, 2),
        steps=3,
        batch_size=5,
        transform=lambda t: 2 * t,
        progress=False,
    )
    assert all(torch.equal(b, 2 * torch.ones(5, 2)) for b in seen)


def test_checkpoint_roundtrip(tmp_path):
    x, y, _ = linear_problem()
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "ckpt" / "model.pt"
    train.fit(
        model, mse, (x, y), steps=15, optimizer=opt, checkpoint=path, progress=False
    )
    fresh, fresh_opt = (
        torch.nn.Linear(3, 1),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
    )
    extra = train.load_checkpoint(path, fresh, fresh_opt)
    assert extra["step"] == 15
    assert torch.equal(fresh.weight, model.weight) and torch.equal(
        fresh.bias, model.bias
    )
    with pytest.raises(FileNotFoundError):
        train.load_checkpoint(tmp_path / "nope.pt", fresh)


def test_scheduler_steps_per_epoch():
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y, _ = linear_problem(100)
    step_options = dict(optimizer=opt, scheduler=sched)
    train.fit(
        model, mse, (x, y), epochs=3, batch_size=50, progress=False, **step_options
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(0.125)


def test_errors_are_clear():
    model = torch.nn.Linear(3, 1)
    x, y, _ = linear_problem(100)
    with pytest.raises(ValueError, match="exactly one of epochs= or steps="):
        train.fit(model, mse, (x, y), progress=False)
    with pytest.raises(ValueError, match="same first dimension"):
        train.fit(model, mse, (x, y[:50]), steps=1, progress=False)
    with pytest.raises(train.TrainingError, match="'loss'"):
        train.fit(
            model, lambda m, a, b: {"mse": m(a).sum()}, (x, y), steps=1, progress=False
        )
    with pytest.raises(train.TrainingError, match="nan at step 0"):
        train.fit(
            model,
            lambda m, a, b: {"loss": m(a).sum() * float("nan")},
            (x, y),
            steps=1,
            progress=False,
        )
    with pytest.raises(train.TrainingError, match="scalars"):
        train.fit(
            model,
            lambda m, a, b: {"loss": m(a).mean(), "v": m(a)},
            (x, y),
            steps=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="early_stopping needs an eval_fn"):
        train.fit(model, mse, (x, y), steps=1, early_stopping=("x", 1), progress=False)


def test_a_passed_time_limit_warns_and_still_runs_every_epoch():
    """max_seconds never changes a number: a run that passes it warns once and trains
    every epoch it was asked for, with the same parameters as a run without a limit."""
    x, y, _ = linear_problem()
    runs = []
    for limit in (None, 0.0):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        g = torch.Generator().manual_seed(1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            options = dict(epochs=3, batch_size=10, progress=False, generator=g)
            h = train.fit(model, mse, (x, y), max_seconds=limit, **options)
        passed = [w for w in caught if "expected" in str(w.message)]
        assert len(passed) == (0 if limit is None else 1), [
            str(w.message) for w in caught
        ]
        runs.append((h, model))
    (h_free, m_free), (h_late, m_late) = runs
    steps_per_epoch = -(-len(x) // 10)
    assert len(h_late) == len(h_free) == 3 * steps_per_epoch
    assert {row["epoch"] for row in h_late.steps} == {0, 1, 2}
    torch.testing.assert_close(m_late.weight, m_free.weight, rtol=0, atol=0)


def test_evaluating_restores_train_mode_after_an_error():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model.train()
    with pytest.raises(ValueError):
        with train.evaluating(model):
            assert not model.training and not torch.is_grad_enabled()
            raise ValueError("boom")
    assert model.training


def test_history_counts_the_epochs_run():
    x, y, _ = linear_problem(
        n=130
    )  # 130 / 50: three steps an epoch, the last one short
    model = torch.nn.Linear(3, 1)
    h = train.fit(model, mse, (x, y), epochs=4, batch_size=50, progress=False)
    assert h.steps_per_epoch == 3 and len(h) == 12 and h.epochs_run == 4
    h = train.fit(model, mse, (x, y), steps=7, batch_size=50, progress=False)
    assert h.epochs_run == pytest.approx(7 / 3)
    with pytest.raises(ValueError, match="fit recorded"):
        train.History().epochs_run
