"""The documented Python API: the example in docs/api.md runs as written, and its representations are exactly
the ones ``ssl-pde-eval`` computes for the same trajectories (its embedding path, independent of the API)."""

from __future__ import annotations

import re

import pytest
import torch

from ssl_pde.api import PretrainedEncoder
from ssl_pde.augment.views import LieViews
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.data.schema import list_shards
from ssl_pde.eval.data import Split
from ssl_pde.eval.regression import embed
from ssl_pde.models.encoders import ResNet18
from tests.conftest import REPO_ROOT

AUG = {"pde": "burgers", "strengths": {"space_translation": 1.0}, "mode": "coords", "crop_t": 8, "crop_x": 32}


@pytest.fixture
def export(tmp_path):
    torch.manual_seed(0)
    enc = ResNet18(3, (8, 16, 32, 64))
    path = tmp_path / "encoder.pt"
    cfg = {"_target_": "ssl_pde.models.encoders.ResNet18", "in_channels": 3, "widths": [8, 16, 32, 64]}
    blob = {"state_dict": enc.state_dict(), "encoder": cfg, "augment": AUG, "pde": "burgers", "probe_param": "nu"}
    torch.save({**blob, "probe_log": True}, path)
    return path, enc.eval()


def test_the_documented_example_runs_and_matches_the_evaluation_path(export, tiny_shards, capsys):
    path, enc = export
    shard = list_shards(tiny_shards["burgers"])[0]
    (code,) = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "docs" / "api.md").read_text(), re.S)
    scope = {"ENCODER": str(path), "SHARD": str(shard)}
    exec(code, scope)
    z = scope["z"]
    ds = TrajectoryDataset(tiny_shards["burgers"], ["nu"])
    split = Split.load(ds, "nu", list(range(scope["u"].shape[0])))
    ref = embed(enc, LieViews(**AUG), split, torch.device("cpu"))
    assert z.shape == ref.shape == (len(split), 64)
    torch.testing.assert_close(z, ref)
    assert capsys.readouterr().out.strip() == f"burgers nu ({len(split)}, 64)"


def test_shapes_that_do_not_fit_are_refused(export):
    api = PretrainedEncoder.load(export[0])
    t, x = torch.linspace(0, 1, 16), torch.linspace(0, 6, 64)
    z = api.embed(torch.randn(3, 16, 64), t, x)  # (N, T, X), length from the grid
    assert z.shape == (3, 64) and torch.isfinite(z).all()
    with pytest.raises(UserError, match="larger than the data"):
        api.embed(torch.randn(3, 4, 64), t[:4], x)
    with pytest.raises(UserError, match=r"x has shape \(10,\)"):
        api.embed(torch.randn(3, 16, 64), t, x[:10])
    with pytest.raises(UserError, match="embeds"):
        api.embed(torch.randn(3, 16, 3, 64, 64), t, x)
