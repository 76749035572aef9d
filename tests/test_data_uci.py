"""Tests of the small regression tables in probdl.data: diabetes, the UCI split reader, splits."""

import numpy as np
import pytest
import torch

from probdl import data


def test_diabetes_offline():
    x, y = data.load_diabetes()
    assert x.shape == (442, 10) and y.shape == (442, 1) and x.dtype == y.dtype == torch.float32
    assert 25 <= y.min() and y.max() <= 346  # disease progression one year after baseline


def test_uci_reader_roundtrip_and_missing_file(tmp_path):
    folder = tmp_path / "uci" / "toy"
    folder.mkdir(parents=True)
    table = np.arange(40, dtype=float).reshape(8, 5)
    np.savetxt(folder / "data.txt", table)
    np.savetxt(folder / "index_features.txt", [0, 1, 2, 3], fmt="%d")
    np.savetxt(folder / "index_target.txt", [4], fmt="%d")
    np.savetxt(folder / "index_train_0.txt", [0, 2, 4, 6, 7], fmt="%d")
    np.savetxt(folder / "index_test_0.txt", [1, 3, 5], fmt="%d")
    xtr, ytr, xte, yte = data.load_uci("toy", 0, root=folder)
    assert xtr.shape == (5, 4) and yte.shape == (3, 1)
    assert torch.equal(yte[:, 0], torch.tensor([9.0, 19.0, 29.0]))
    assert torch.equal(xtr[1], torch.tensor([10.0, 11.0, 12.0, 13.0]))
    with pytest.raises(data.DataFileError, match="index_train_3.txt is missing in .*toy"):
        data.load_uci("toy", 3, root=folder)


def test_random_split_and_standardize():
    parts = data.random_split(442, (0.9,), seed=3)
    assert [len(p) for p in parts] == [398, 44]
    assert torch.equal(torch.sort(torch.cat(parts)).values, torch.arange(442))
    assert torch.equal(parts[0], data.random_split(442, (0.9,), seed=3)[0])
    with pytest.raises(ValueError, match="sum to less than 1"):
        data.random_split(10, (0.6, 0.5))
    x = torch.randn(50, 3) * 4 + 2
    xs, xo, mean, std = data.standardize(x, x[:5])
    torch.testing.assert_close(xs.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(xs.std(0), torch.ones(3))
    torch.testing.assert_close(xo, xs[:5])
