import pytest
import torch

from probdl import config


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in (
        "PROBDL_PROFILE",
        "CI",
        "PROBDL_DEVICE",
        "PROBDL_DATA",
        "PROBDL_PROGRESS",
    ):
        monkeypatch.delenv(var, raising=False)


def test_default_profile_is_book_and_smoke_on_ci(monkeypatch):
    assert config.profile() == "book"
    monkeypatch.setenv("CI", "true")
    assert config.profile() == "smoke"
    monkeypatch.setenv("CI", "false")
    assert config.profile() == "book"


def test_explicit_profile_wins_over_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PROBDL_PROFILE", "paper")
    assert config.profile() == "paper"
    monkeypatch.setenv("PROBDL_PROFILE", " Book ")
    assert config.profile() == "book"


@pytest.mark.parametrize("bad", ["fast", "smok", "full"])
def test_unknown_profile_lists_valid_names(monkeypatch, bad):
    monkeypatch.setenv("PROBDL_PROFILE", bad)
    with pytest.raises(ValueError) as err:
        config.profile()
    message = str(err.value)
    assert repr(bad) in message and "PROBDL_PROFILE" in message
    for name in config.PROFILES:
        assert name in message


def test_every_chapter_module_overrides_only_its_book_keys():
    import importlib
    import pkgutil

    import probdl.sizes

    names = [m.name for m in pkgutil.iter_modules(probdl.sizes.__path__)]
    assert {"setup", "nade", "vae"} <= set(names)
    for name in names:
        module = importlib.import_module(f"probdl.sizes.{name}")
        assert name in config.CHAPTERS, (
            f"probdl/sizes/{name}.py is not a chapter in config.CHAPTERS"
        )
        for prof in ("SMOKE", "PAPER"):
            extra = set(getattr(module, prof, {})) - set(module.BOOK)
            assert not extra, (
                f"probdl/sizes/{name}.py: {prof} overrides keys BOOK lacks: {extra}"
            )
        for prof in config.PROFILES:
            assert set(config.sizes(name, prof)) == set(module.BOOK)
    assert (
        config.sizes("setup", "smoke")["n_train"]
        < config.sizes("setup", "book")["n_train"]
    )
    with pytest.raises(KeyError, match="known chapters"):
        config.sizes("no-such-chapter")


def test_an_override_of_an_unknown_key_is_an_error(monkeypatch):
    import probdl.sizes.setup as setup_sizes

    monkeypatch.setattr(setup_sizes, "SMOKE", {"n_trian": 5})
    with pytest.raises(KeyError, match="n_trian"):
        config.sizes("setup", "smoke")


def test_threads_for_small_and_large_models(monkeypatch):
    monkeypatch.delenv("PROBDL_THREADS", raising=False)
    small = torch.nn.Linear(10, 10)
    large = torch.nn.Linear(1000, 1000)
    assert config.threads_for(small) == 1
    assert config.threads_for(large) == torch.get_num_threads()
    monkeypatch.setenv("PROBDL_THREADS", "3")
    assert config.threads_for(small) == 3
    monkeypatch.setenv("PROBDL_THREADS", "zero")
    with pytest.raises(ValueError, match="PROBDL_THREADS"):
        config.threads_for(small)


def test_torch_threads_restores_the_count_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with config.torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_an_override_of_another_type_is_an_error(monkeypatch):
    """A profile's override keeps BOOK's type: a string or a float for a count fails
    when the chapter reads its sizes, by chapter, profile and key; an int for a float,
    a tuple for a list and None (a check switched off) are allowed."""
    import probdl.sizes.setup as setup_sizes

    book = setup_sizes.BOOK
    count = next(k for k, v in book.items() if type(v) is int)
    for bad in ("5", 5.0, True):
        monkeypatch.setattr(setup_sizes, "SMOKE", {count: bad})
        with pytest.raises(TypeError, match=rf"setup\.py: SMOKE\['{count}'\]"):
            config.sizes("setup", "smoke")
    monkeypatch.setattr(setup_sizes, "SMOKE", {count: None})
    assert config.sizes("setup", "smoke")[count] is None
    monkeypatch.setattr(setup_sizes, "BOOK", {**book, "f": 0.5, "l": [1, 2]})
    monkeypatch.setattr(setup_sizes, "SMOKE", {"f": 1, "l": (3,)})
    assert config.sizes("setup", "smoke")["f"] == 1


def test_sizes_returns_a_copy():
    s = config.sizes("setup", "smoke")
    s["n_show"] = -1
    assert config.sizes("setup", "smoke")["n_show"] != -1


def test_quiet_under_ci_and_smoke(monkeypatch):
    assert not config.quiet()
    monkeypatch.setenv("CI", "1")
    assert config.quiet()
    monkeypatch.setenv("PROBDL_PROGRESS", "1")
    assert not config.quiet()


def test_device_choice_and_override(monkeypatch):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.device().type == expected
    monkeypatch.setenv("PROBDL_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    monkeypatch.setenv("PROBDL_DEVICE", "toaster")
    with pytest.raises(ValueError, match="PROBDL_DEVICE"):
        config.device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_cuda_is_an_error(monkeypatch):
    monkeypatch.setenv("PROBDL_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA"):
        config.device()


def test_seed_everything_reproduces_draws():
    import random

    import numpy as np

    config.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    config.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    with pytest.raises(TypeError):
        config.seed_everything("42")


def test_data_dir_default_and_override(monkeypatch, tmp_path):
    assert config.data_dir() == config.REPO_ROOT / "data"
    assert (config.data_dir() / "MNIST" / "raw").is_dir()
    monkeypatch.setenv("PROBDL_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()


def test_describe_prints_profile_and_sizes(capsys, monkeypatch):
    monkeypatch.setenv("PROBDL_PROFILE", "smoke")
    info = config.describe("setup", seed=7)
    out = capsys.readouterr().out
    assert (
        info["profile"] == "smoke" and "smoke" in out and "n_show" in out and "7" in out
    )


def test_timer_measures_the_block(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(config.time, "perf_counter", lambda: next(clock))
    with config.timer() as t:
        assert t.seconds is None  # not known inside the block
    assert t.seconds == 2.5


def test_format_table_fits_the_column_and_keeps_every_value():
    """The sizes a chapter prints fit the book's 88 columns: a long value is wrapped
    under itself, and no character of it is lost."""
    values = {"a": 1, "bb": 2.5, "long": list(range(60)), "c": "x"}
    text = config.format_table(values)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 88 and len(lines) > 2
    long = [line for line in lines if not line.startswith(("a ", "bb", "c "))]
    assert "".join(line.strip() for line in long).replace(" ", "") == "long" + repr(
        list(range(60))
    ).replace(" ", "")
    for chapter in ("bbb_mnist", "laplace", "inference_menu", "gan"):
        table = config.format_table(config.sizes(chapter, "book"))
        assert max(map(len, table.splitlines())) <= 88, chapter
