import math
import shutil

import pytest
import torch

from probdl import config, data

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def default_data_dir(monkeypatch):
    monkeypatch.delenv("PROBDL_DATA", raising=False)


def test_mnist_shapes_dtypes_ranges():
    x, y = data.load_mnist("train")
    assert (
        x.shape == (50_000, 784) and x.dtype == torch.float32 and y.dtype == torch.int64
    )
    assert x.min() == 0 and x.max() == 1
    x2, _ = data.load_mnist("test", n=10, flatten=False)
    assert x2.shape == (10, 28, 28)
    xv, _ = data.load_mnist("valid")
    xf, _ = data.load_mnist("train_full")
    assert xv.shape == (10_000, 784) and xf.shape == (60_000, 784)
    assert torch.equal(torch.cat([x, xv]), xf), (
        "train and valid are the first 50,000 and last 10,000"
    )


def test_label_counts_match_the_published_ones():
    _, y = data.load_mnist("train_full")
    _, yt = data.load_mnist("test")
    assert torch.bincount(y).tolist() == TRAIN_COUNTS
    assert torch.bincount(yt).tolist() == TEST_COUNTS


def test_bad_split_and_subset_size():
    with pytest.raises(ValueError, match="valid splits"):
        data.load_mnist("training")
    with pytest.raises(ValueError, match="has 10000"):
        data.load_mnist("test", n=10_001)
    with pytest.raises(ValueError, match="positive"):
        data.load_mnist("test", n=0)


def test_threshold_binarization():
    x = torch.tensor([[0.0, 0.49, 0.5, 0.51, 1.0]])
    assert data.binarize_threshold(x).tolist() == [[0, 0, 0, 1, 1]]
    with pytest.raises(ValueError, match="divide uint8 pixels by 255"):
        data.binarize_threshold(torch.tensor([[0.0, 255.0]]))
    with pytest.raises(TypeError):
        data.binarize_threshold(torch.tensor([[0, 1]]))


def test_dynamic_binarization_is_a_fresh_unbiased_draw():
    x, _ = data.load_mnist("test", n=2000)
    g = torch.Generator().manual_seed(0)
    a, b = data.binarize_dynamic(x, generator=g), data.binarize_dynamic(x, generator=g)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b), "two draws should differ"
    # pixels that are exactly 0 or 1 are deterministic
    assert torch.equal(a[x == 0], torch.zeros_like(a[x == 0])) and torch.equal(
        a[x == 1], torch.ones_like(a[x == 1])
    )
    # unbiased: mean over draws matches the grey level (standard error of the mean ~
    # 1.3e-4)
    draws = torch.stack([data.binarize_dynamic(x, generator=g) for _ in range(10)])
    assert abs(draws.mean() - x.mean()) < 1e-3
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        data.binarize_dynamic(x, generator=g1), data.binarize_dynamic(x, generator=g2)
    )


def test_static_binarized_mnist():
    expected_means = {"train": 0.13056, "valid": 0.13113, "test": 0.13251}
    for split, n in (("train", 50_000), ("valid", 10_000), ("test", 10_000)):
        x = data.load_binarized_mnist(split)
        assert x.shape == (n, 784) and x.dtype == torch.float32
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert abs(x.mean().item() - expected_means[split]) < 5e-5
    assert data.load_binarized_mnist("test", n=5).shape == (5, 784)
    with pytest.raises(ValueError, match="train, valid, test"):
        data.load_binarized_mnist("train_full")


def test_regression_data():
    x, y = data.regression_data(n=500, seed=1)
    assert x.shape == y.shape == (500, 1) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 0.5
    x2, y2 = data.regression_data(n=500, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, data.regression_data(n=500, seed=2)[1])
    # without noise the points lie on the curve
    x0, y0 = data.regression_data(n=100, noise_var=0.0, low=0.0, high=1.0)
    assert torch.allclose(y0, data.regression_curve(x0), atol=1e-6)
    # with small noise v, y - curve(x) ~ v * curve'(x): the recovered v has the
    # asked-for variance
    var = 1e-6
    xs, ys = data.regression_data(n=20_000, noise_var=var, low=0.0, high=1.0, seed=3)
    slope = (
        1
        + 0.6 * math.pi * torch.cos(2 * math.pi * xs)
        + 1.2 * math.pi * torch.cos(4 * math.pi * xs)
    )
    keep = slope.abs() > 0.5
    v = ((ys - data.regression_curve(xs))[keep] / slope[keep]).double()
    assert abs(v.var().item() / var - 1) < 0.05
    with pytest.raises(ValueError):
        data.regression_data(n=10, noise_var=-1)
    with pytest.raises(ValueError):
        data.regression_data(n=10, low=1, high=0)


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    """A private copy of the shipped .gz files, used as PROBDL_DATA."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in data.MNIST_GZ_MD5:
        shutil.copy(data.mnist_raw_dir(config.REPO_ROOT / "data") / name, raw / name)
    (tmp_path / "binarized_mnist").mkdir()
    shutil.copy(
        config.REPO_ROOT / "data" / data.BINARIZED_FILE, tmp_path / data.BINARIZED_FILE
    )
    monkeypatch.setenv("PROBDL_DATA", str(tmp_path))
    return tmp_path


@pytest.fixture
def no_download(monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def refuse(*args, **kwargs):
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr(tv_mnist.MNIST, "download", refuse)
    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", refuse, raising=False)


def test_copy_loads_offline(data_copy):
    x, y = data.load_mnist("test", n=100)
    assert x.shape == (100, 784) and y.shape == (100,)


def _remove(path):
    path.unlink()


def _flip_a_byte(path):
    blob = bytearray(path.read_bytes())
    blob[100] ^= 0xFF
    path.write_bytes(bytes(blob))


@pytest.mark.parametrize(
    "split, name, damage, word",
    [
        ("test", "t10k-labels-idx1-ubyte.gz", _remove, "missing"),
        ("train", "train-labels-idx1-ubyte.gz", _flip_a_byte, "corrupt"),
    ],
)
def test_a_missing_or_corrupt_file_is_a_clear_error(
    data_copy, no_download, split, name, damage, word
):
    """The error names the file, what is wrong with it, its checksum and PROBDL_DATA."""
    damage(data_copy / "MNIST" / "raw" / name)
    with pytest.raises(data.DataFileError) as err:
        data.load_mnist(split)
    message = str(err.value)
    assert word in message and name in message
    assert data.MNIST_GZ_MD5[name] in message and "PROBDL_DATA" in message


def test_corrupt_binarized_archive_is_a_clear_error(data_copy):
    path = data_copy / data.BINARIZED_FILE
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data.DataFileError, match=data.BINARIZED_SHA256):
        data.load_binarized_mnist("test")
    path.unlink()
    with pytest.raises(data.DataFileError, match="missing"):
        data.load_binarized_mnist("test")


def test_damaged_extracted_file_is_extracted_again(data_copy):
    x_ref, _ = data.load_mnist("test", n=50)
    raw = data_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    assert raw.exists()
    raw.write_bytes(b"\0" * 100)
    data.cache.clear()
    with pytest.warns(UserWarning, match="damaged"):
        x, _ = data.load_mnist("test", n=50)
    assert torch.equal(x, x_ref)


@pytest.mark.parametrize(
    "bad,error,match",
    [
        ([[0, 1]], TypeError, "torch.Tensor"),
        (torch.zeros(4), ValueError, "single example"),
        (torch.zeros(2, 2, 2), ValueError, "2-D"),
        (torch.zeros(2, 5), ValueError, "4 visible units"),
        (torch.full((2, 4), 0.5), ValueError, "0 or 1"),
    ],
)
def test_check_binary_errors(bad, error, match):
    with pytest.raises(error, match=match):
        data.check_binary(bad, 4, "NADE")


def test_check_binary_returns_float():
    x = torch.tensor([[0, 1, 1, 0]])
    out = data.check_binary(x, 4)
    assert out.dtype == torch.float32 and torch.equal(out, x.float())
    y = torch.tensor([[0.0, 1.0]])
    assert data.check_binary(y) is y
