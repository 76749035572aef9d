"""Tests of the small regression tables in probdl.data: the UCI split reader, splits."""

import shutil

import numpy as np
import pytest
import torch

from probdl import data


def test_uci_reader_roundtrip_and_missing_file(tmp_path):
    folder = tmp_path / "uci" / "toy"
    folder.mkdir(parents=True)
    table = np.arange(40, dtype=float).reshape(8, 5)
    np.savetxt(folder / "data.txt", table)
    np.savetxt(folder / "index_features.txt", [0, 1, 2, 3], fmt="%d")
    np.savetxt(folder / "index_target.txt", [4], fmt="%d")
    np.savetxt(folder / "index_train_0.txt", [0, 2, 4, 6, 7], fmt="%d")
    np.savetxt(folder / "index_test_0.txt", [1, 3, 5], fmt="%d")
    (folder / "n_splits.txt").write_text("4\n")
    xtr, ytr, xte, yte = data.load_uci("toy", 0, root=folder)
    assert xtr.shape == (5, 4) and yte.shape == (3, 1)
    assert torch.equal(yte[:, 0], torch.tensor([9.0, 19.0, 29.0]))
    assert torch.equal(xtr[1], torch.tensor([10.0, 11.0, 12.0, 13.0]))
    with pytest.raises(
        data.DataFileError, match="index_train_3.txt is missing in .*toy"
    ):
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


SHIPPED = {
    "bostonHousing": (506, 13, 51),
    "energy": (768, 8, 77),
    "yacht": (308, 6, 31),
}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_uci_sets(name):
    n, d, n_test = SHIPPED[name]
    assert data.uci_n_splits(name) == 20
    xtr, ytr, xte, yte = data.load_uci(name, 19)
    assert (
        xtr.shape == (n - n_test, d)
        and xte.shape == (n_test, d)
        and yte.shape == (n_test, 1)
    )
    # train and test rows are disjoint and together the whole set
    rows = torch.cat([torch.cat([xtr, ytr], 1), torch.cat([xte, yte], 1)])
    table = torch.tensor(
        np.loadtxt(data.uci_folder(name) / "data.txt"), dtype=torch.float32
    )
    cols = [
        *np.loadtxt(data.uci_folder(name) / "index_features.txt", dtype=int, ndmin=1)
    ]
    cols.append(int(np.loadtxt(data.uci_folder(name) / "index_target.txt", dtype=int)))
    assert torch.equal(
        torch.sort(rows.sum(1)).values, torch.sort(table[:, cols].sum(1)).values
    )
    with pytest.raises(ValueError, match="has 20 splits, numbered 0 to 19"):
        data.load_uci(name, 20)


def test_uci_public_layout_and_corrupt_files(tmp_path):
    public = tmp_path / "UCI_Datasets" / "yacht" / "data"
    shutil.copytree(data.uci_folder("yacht"), public)
    ours = data.load_uci("yacht", 3)
    for root in (tmp_path, tmp_path / "UCI_Datasets"):
        for a, b in zip(data.load_uci("yacht", 3, root=root), ours):
            assert torch.equal(a, b)
    with open(public / "index_test_7.txt", "a") as fh:
        fh.write("0\n")
    with pytest.raises(data.DataFileError, match="split files .* sha256"):
        data.load_uci("yacht", 3, root=tmp_path)
    shutil.copy(data.uci_folder("yacht") / "index_test_7.txt", public)
    text = (public / "data.txt").read_text()
    (public / "data.txt").write_text(text.replace("0.", "1.", 1))
    with pytest.raises(data.DataFileError, match="corrupt data file .*data.txt"):
        data.load_uci("yacht", 3, root=tmp_path)
    with pytest.raises(data.DataFileError, match="no data.txt"):
        data.load_uci("yacht", 0, root=tmp_path / "nowhere")
