"""Several evaluation crops per trajectory (``ssl-pde-eval eval_crops=[n_t,n_x]``): where the crops sit, that each
is the trajectory's own values at its origin, that representations and predictions are their means, refusals."""

from __future__ import annotations

import json

import pytest
import torch

from ssl_pde.augment.views import LieViews, crop_origins
from ssl_pde.cli.eval import main as eval_main
from ssl_pde.core.errors import UserError
from ssl_pde.eval.regression import Regressor, embed, predict_network
from tests.eval_helpers import AUG, make_encoder, save_encoder, small_eval_args


def test_crop_origins_by_hand():
    """One crop per axis sits where the single evaluation crop always sat (central in time, x = 0); several are
    spread evenly from the first to the last possible origin; more crops than origins are refused."""
    assert crop_origins(64, 128, 32, 64, (1, 1)) == [(16, 0)]
    assert crop_origins(64, 128, 32, 64, (3, 2)) == [(0, 0), (0, 64), (16, 0), (16, 64), (32, 0), (32, 64)]
    assert crop_origins(10, 8, 4, 8, (4, 1)) == [(0, 0), (2, 0), (4, 0), (6, 0)]  # round(i * 6 / 3)
    with pytest.raises(UserError, match=r"eval_crops=\[34, 1\]: 34 crops of 32 in time need 1 to 33"):
        crop_origins(64, 128, 32, 64, (34, 1))
    with pytest.raises(UserError, match="in space need 1 to 65"):
        crop_origins(64, 128, 32, 64, (1, 0))


@pytest.mark.parametrize("mode", ["coords", "resample"])
def test_each_crop_is_the_trajectory_at_its_origin(burgers_splits, mode):
    """With one crop per axis ``eval_views`` is ``[eval_view]``; with a 2 x 3 grid each crop's field channel is the
    stored u at its origin (sliced independently) and, in ``coords`` mode, its coordinate channels are relative to
    its own origin (equal for every crop of a uniform grid)."""
    data, _ = burgers_splits
    views = LieViews(**{**AUG, "mode": mode})
    u, t, x, length = views.inputs(data["valid"].batch(slice(0, 4), torch.device("cpu")))
    (single,) = views.eval_views(u, t, x, length)
    torch.testing.assert_close(single, views.eval_view(u, t, x, length), rtol=0, atol=0)
    views.eval_grid = (2, 3)
    crops = views.eval_views(u, t, x, length)
    origins = crop_origins(u.shape[1], u.shape[2], views.crop_t, views.crop_x, (2, 3))
    assert len(crops) == 6
    for v, (t0, x0) in zip(crops, origins, strict=True):
        want = u[:, t0 : t0 + views.crop_t, x0 : x0 + views.crop_x].float()
        torch.testing.assert_close(v[:, -1], want, rtol=0, atol=0)
        if mode == "coords":
            torch.testing.assert_close(v[:, :2], crops[0][:, :2], rtol=0, atol=1e-6)


def test_representations_and_predictions_are_crop_means(burgers_splits):
    """``embed`` and ``predict_network`` under a 2 x 2 grid equal the means of the encoder / network applied to
    each crop separately (computed here without the grid)."""
    data, _ = burgers_splits
    views, enc = LieViews(**AUG), make_encoder(0)
    s = data["test"]
    u, t, x, length = views.inputs(s.batch(slice(0, len(s)), torch.device("cpu")))
    origins = crop_origins(u.shape[1], u.shape[2], views.crop_t, views.crop_x, (2, 2))
    with torch.no_grad():
        feats = torch.stack([enc(views.eval_view(u, t, x, length, o)) for o in origins]).mean(0)
        torch.manual_seed(1)
        net = Regressor(make_encoder(1)).eval()
        preds = torch.stack([net(views.eval_view(u, t, x, length, o)).double() for o in origins]).mean(0)
    views.eval_grid = (2, 2)
    torch.testing.assert_close(embed(enc, views, s, torch.device("cpu")), feats, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(predict_network(net, views, s, torch.device("cpu")), preds, rtol=1e-6, atol=1e-8)
    assert not torch.allclose(feats, enc(views.eval_view(u, t, x, length)))  # the grid changed the features


def test_eval_runs_with_several_crops_and_refuses_bad_grids(cli, burgers_splits, tmp_path):
    """In process: a regression with ``eval_crops=[2,2]`` records the grid and differs from the one-crop run on
    the linear probe; grids the data cannot hold, a wrong length and several crops for time-stepping are refused
    with one line and exit status 2, nothing written."""
    _, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    docs = {}
    for grid in ("[1,1]", "[2,2]"):
        out = tmp_path / f"out{grid[1]}"
        r = cli(eval_main, *small_eval_args(ckpt, root), f"eval_crops={grid}", f"out_dir={out}")
        assert r.returncode == 0, r.stderr
        docs[grid] = json.loads((out / "results.json").read_text())
    assert docs["[2,2]"]["config"]["eval_crops"] == [2, 2]
    probe = {g: [c["test"]["ssl_linear"]["nmse"] for c in d["result"]["cells"]] for g, d in docs.items()}
    assert probe["[1,1]"] != probe["[2,2]"]
    for arg, msg in (
        ("eval_crops=[99,1]", "eval_crops=[99, 1]: 99 crops of 8 in time need 1 to"),
        ("eval_crops=[1]", "eval_crops=[1]: give [crops in time, crops in space]"),
    ):
        out = tmp_path / "bad"
        r = cli(eval_main, *small_eval_args(ckpt, root), arg, f"out_dir={out}")
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not out.exists()
    r = cli(eval_main, *small_eval_args(ckpt, root), "task=timestep", "eval_crops=[2,1]", f"out_dir={out}")
    assert r.returncode == 2 and "task=regression only" in r.stderr


def test_absolute_coordinates_and_the_eval_training_input_under_several_crops(burgers_splits):
    """With ``relative_coords=False`` each crop's coordinate channels are the stored t and x at its own cells; the
    training input ``eval`` draws for each trajectory one of its evaluation crops (both crops of a 2 x 1 grid
    occur), and the BatchNorm re-estimation pass reads every crop."""
    from ssl_pde.eval.regression import random_eval_crop, training_inputs

    data, _ = burgers_splits
    views = LieViews(**{**AUG, "relative_coords": False})
    views.eval_grid = (2, 2)
    s = data["train"]
    u, t, x, length = views.inputs(s.batch(slice(0, len(s)), torch.device("cpu")))
    origins = crop_origins(u.shape[1], u.shape[2], views.crop_t, views.crop_x, (2, 2))
    for v, (t0, x0) in zip(views.eval_views(u, t, x, length), origins, strict=True):
        torch.testing.assert_close(v[:, 0, :, 0], t[:, t0 : t0 + views.crop_t].float())
        torch.testing.assert_close(v[:, 1, 0, :], x[:, x0 : x0 + views.crop_x].float())
    views.eval_grid = (2, 1)
    crops = views.eval_views(u, t, x, length)
    picked = random_eval_crop(views, (u, t, x, length), torch.Generator().manual_seed(0))
    which = [next(k for k, c in enumerate(crops) if torch.equal(picked[i], c[i])) for i in range(len(s))]
    assert set(which) == {0, 1}
    batches = list(training_inputs(views, "eval", s, torch.device("cpu"), batch=12, seed=0))
    assert len(batches) == 2 * 2 and torch.equal(torch.cat(batches[0::2]), crops[0])
