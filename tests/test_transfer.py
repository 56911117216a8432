"""Transfer evaluations (ssl_pde/eval/transfer.py): the parameter extrapolated beyond the labelled range
(``transfer.extrapolate``) and the test split's grid changed (``transfer.resolution``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ssl_pde.augment.corrupt import Corruption
from ssl_pde.augment.views import interpolate
from ssl_pde.core.errors import UserError
from ssl_pde.eval.data import Split, draw_labels
from ssl_pde.eval.regression import clamp_range, fit_ridge
from ssl_pde.eval.transfer import (
    Transfer,
    clamp_margin,
    fourier_resample,
    resample_split,
    restrict_for_extrapolation,
)
from tests.eval_helpers import save_encoder, small_eval_args

F64 = torch.float64


def band_limited(x: torch.Tensor, length: float) -> torch.Tensor:
    """A periodic function of period ``length`` with modes 0, 1, 3 and 5 only."""
    w = 2 * math.pi / length
    return 0.3 + torch.cos(w * x + 0.2) + 0.5 * torch.sin(3 * w * x) - 0.2 * torch.cos(5 * w * x + 1.0)


def grid(n: int, length: float, origin: float) -> torch.Tensor:
    return origin + torch.arange(n, dtype=F64) * length / n


# ---------------------------------------------------------------------------------------------- extrapolation
def test_extrapolation_keeps_labels_and_valid_below_the_train_quantile_and_tests_above(burgers_splits):
    """The threshold is the train split's 0.7-quantile (recomputed here from the sorted train targets by the
    linear-interpolation formula), and only train's: swapping the valid and test splits for others leaves it and
    the kept train trajectories unchanged. Every kept train and valid trajectory (hence every labelled draw) is at
    or below it, every kept test trajectory above it, no trajectory on its side is dropped, and the kept ones are
    the stored rows unchanged."""
    data, _ = burgers_splits
    splits = {s: data[s] for s in ("train", "valid", "test")}
    out, rec = restrict_for_extrapolation(splits, 0.7, "nu")
    s = np.sort(data["train"].y.numpy())
    pos = 0.7 * (len(s) - 1)
    lo = math.floor(pos)
    thr = s[lo] + (pos - lo) * (s[lo + 1] - s[lo])
    assert rec["threshold"] == pytest.approx(thr, rel=1e-12) and rec["threshold_from"] == "train"
    assert bool((out["train"].y <= thr).all()) and bool((out["valid"].y <= thr).all())
    assert bool((out["test"].y > thr).all())
    for name, side in (("train", data["train"].y <= thr), ("valid", data["valid"].y <= thr), ("test", None)):
        keep = side if side is not None else data["test"].y > thr
        assert len(out[name]) == int(keep.sum()) == rec["n"][name], name
        assert torch.equal(out[name].data["u"], data[name].data["u"][keep])
        assert torch.equal(out[name].params["domain_length"], data[name].params["domain_length"][keep])
    assert 0 < len(out["test"]) < len(data["test"]) and rec["n_stored"]["train"] == len(data["train"])
    for d in range(5):  # the labelled draws of an extrapolation run
        assert bool((out["train"].y[draw_labels(len(out["train"]), 16, d)] <= thr).all())
    other_test = data["test"].subset(torch.argsort(data["test"].y, descending=True)[[0, 1, 2, -1]])
    swapped, rec2 = restrict_for_extrapolation({**splits, "valid": data["test_b"], "test": other_test}, 0.7, "nu")
    assert rec2["threshold"] == rec["threshold"] and torch.equal(swapped["train"].y, out["train"].y)
    assert rec2["n"]["valid"] == len(data["test_b"]) and rec2["n"]["test"] == 3


def test_the_clamp_forbids_extrapolation_unless_widened():
    """A ridge on a feature equal to the target (labelled targets in [0, 0.7], test targets in (0.7, 1]) predicts
    every test target exactly when the clamp is widened by clamp_margin(0.7), but never above the labelled maximum
    with the default clamp (the labelled range, unchanged: clamp_range with margin 0 is min and max bit for bit)."""
    y_lab = torch.linspace(0.0, 0.7, 20, dtype=F64)
    y_test = torch.linspace(0.75, 1.0, 6, dtype=F64)

    def split(y: torch.Tensor) -> Split:
        return Split({"f": y[:, None]}, y)

    def features(s: Split) -> torch.Tensor:
        return s.data["f"]

    lab, valid, test = split(y_lab), split(y_lab[::3]), split(y_test)
    narrow = fit_ridge(features, lab, valid, [1e-8], log_target=False, metric="mse")
    wide = fit_ridge(features, lab, valid, [1e-8], log_target=False, metric="mse", clamp_margin=clamp_margin(0.7))
    assert torch.equal(narrow.predict(test), torch.full_like(y_test, float(y_lab.max())))
    torch.testing.assert_close(wide.predict(test), y_test, rtol=0, atol=1e-5)
    z = torch.randn(50, dtype=F64)
    assert torch.equal(torch.stack(clamp_range(z)), torch.stack([z.min(), z.max()]))
    lo, hi = clamp_range(z, 1.0)
    assert float(hi - lo) == pytest.approx(3 * float(z.max() - z.min()))
    assert clamp_margin(0.7) == 1.0 and clamp_margin(0.25) == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------- resolution
@pytest.mark.parametrize(("m", "n"), [(32, 16), (32, 64), (33, 16), (32, 13), (31, 64), (12, 11)])
def test_fourier_resampling_of_a_band_limited_signal_is_exact(m, n):
    """Samples of a function with modes below both grids' Nyquist frequencies, on a periodic grid of m points (any
    origin, period 3), resampled to n points equal the function itself at the n new points (to rounding), for even
    and odd grids, coarsening and refining; a float32 input gives float32."""
    length, origin = 3.0, 0.4
    u = band_limited(grid(m, length, origin), length).expand(2, 3, m)
    out = fourier_resample(u, n)
    assert out.shape == (2, 3, n)
    torch.testing.assert_close(out, band_limited(grid(n, length, origin), length).expand(2, 3, n), rtol=0, atol=1e-12)
    assert fourier_resample(u.float(), n).dtype == torch.float32


def test_refining_is_the_trigonometric_interpolant_and_round_trips():
    """Refining any signal (random values) equals the exact trigonometric interpolation of the view builders
    (ssl_pde.augment.views.interpolate, an independent implementation) at the new points; coarsening a refined
    signal back returns it (zero-padding adds nothing), for even and odd grids; a band-limited signal survives
    coarsening then refining unchanged; the same number of points returns the input itself."""
    length, origin = 2.5, -0.3
    u = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(0), dtype=F64)
    fine = fourier_resample(u, 80)
    t = torch.arange(4, dtype=F64).expand(2, 4)
    xq = grid(80, length, origin).expand(2, 4, 80).clone()
    ref = interpolate(
        u, t, torch.full((2,), length, dtype=F64), torch.full((2,), origin, dtype=F64), t[:, :, None] + 0 * xq, xq,
        degree=1,
    )  # fmt: skip
    torch.testing.assert_close(fine, ref, rtol=0, atol=1e-12)
    for m, n in ((32, 80), (31, 62), (30, 45)):
        v = torch.randn(3, m, generator=torch.Generator().manual_seed(m), dtype=F64)
        torch.testing.assert_close(fourier_resample(fourier_resample(v, n), m), v, rtol=0, atol=1e-12)
    b = band_limited(grid(64, length, origin), length)
    torch.testing.assert_close(fourier_resample(fourier_resample(b, 16), 64), b, rtol=0, atol=1e-12)
    assert fourier_resample(u, 32) is u


def test_resample_split_moves_the_grid_and_keeps_the_period(burgers_splits):
    """A resampled split keeps its times, period, targets and parameters; its x grid has the new number of points
    from the same origin over the same period; a band-limited field written onto the stored grid reads as that
    field at the new points."""
    data, _ = burgers_splits
    s = data["test"]
    n_x, length = s.data["x"].shape[1], s.data["length"]
    w = 2 * math.pi / length[:, None, None, None]
    u = torch.cos(w * s.data["x"][:, None, None, :]) + 0.3 * torch.sin(3 * w * s.data["x"][:, None, None, :])
    u = u.expand(-1, s.data["t"].shape[1], 1, -1).contiguous()
    src = Split({**s.data, "u": u}, s.y, dict(s.params))
    for n in (n_x // 2, 2 * n_x):
        out = resample_split(src, n)
        x = out.data["x"]
        assert x.shape == (len(s), n) and torch.equal(x[:, 0], s.data["x"][:, 0])
        torch.testing.assert_close(x[:, 1] - x[:, 0], length / n, rtol=1e-12, atol=0)
        for k in ("t", "length"):
            assert torch.equal(out.data[k], s.data[k])
        assert torch.equal(out.y, s.y) and out.params.keys() == s.params.keys()
        expect = torch.cos(w * x[:, None, None, :]) + 0.3 * torch.sin(3 * w * x[:, None, None, :])
        torch.testing.assert_close(out.data["u"], expect.expand_as(out.data["u"]), rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------- the evaluation
def test_eval_runs_record_each_transfer_and_differ_from_the_plain_run(cli, burgers_splits, tmp_path):
    """The real command on tiny data, plain, with transfer.extrapolate=0.7 and with transfer.resolution=0.5:
    results.json stores each setting (config and a transfer record) and results.md's title names it. Under
    extrapolation the test split is the trajectories above the train threshold, every labelled floor lies at or
    below it, and the scores differ from the plain run's. With the test grid halved the labels and test targets
    are the plain run's (the floors are equal) while the SSL probe's test score differs. Refused in one line:
    task=timestep with a transfer, and more labels than the in-range train trajectories."""
    from ssl_pde.cli.eval import main as eval_main

    data, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")
    common = small_eval_args(ckpt, root)
    docs, mds = {}, {}
    for name, extra in (
        ("plain", []),
        ("extrapolate", ["transfer.extrapolate=0.7"]),
        ("resolution", ["transfer.resolution=0.5"]),
    ):
        res = cli(eval_main, *common, *extra, f"out_dir={tmp_path / name}")
        assert res.returncode == 0, res.stderr[-2000:]
        docs[name] = json.loads((tmp_path / name / "results.json").read_text())
        mds[name] = (tmp_path / name / "results.md").read_text().splitlines()[0]
    plain, ext, res = docs["plain"], docs["extrapolate"], docs["resolution"]
    assert plain["transfer"] is None and plain["config"]["transfer"] == {"extrapolate": None, "resolution": None}
    assert mds["plain"] == "# Regression: burgers"

    thr = float(np.quantile(data["train"].y.numpy(), 0.7))
    rec = ext["transfer"]["extrapolate"]
    assert ext["config"]["transfer"]["extrapolate"] == 0.7 and ext["transfer"]["resolution"] is None
    assert rec["threshold"] == pytest.approx(thr) and rec["clamp_margin"] == 1.0
    assert ext["n_test"] == int((data["test"].y > thr).sum()) == rec["n"]["test"]
    assert ext["n_valid"] == int((data["valid"].y <= thr).sum())
    assert "extrapolation: test nu > " in mds["extrapolate"] and "train 0.7-quantile" in mds["extrapolate"]
    for c0, c1 in zip(plain["result"]["cells"], ext["result"]["cells"], strict=True):
        assert max(c1["choices"]["floor"]["nmse"]) <= thr  # a constant fitted on in-range labels
        assert c0["test"]["ssl_linear"]["nmse"] != c1["test"]["ssl_linear"]["nmse"]

    assert res["config"]["transfer"]["resolution"] == 0.5 and res["transfer"]["extrapolate"] is None
    n_x = data["test"].data["x"].shape[1]
    assert res["transfer"]["resolution"]["nx"] == {"stored": n_x, "test": n_x // 2}
    assert res["transfer"]["resolution"]["splits"] == ["test"]
    assert f"test grid ×0.5: {n_x} → {n_x // 2} points" in mds["resolution"]
    assert res["n_test"] == plain["n_test"]
    for c0, c1 in zip(plain["result"]["cells"], res["result"]["cells"], strict=True):
        assert c0["choices"]["floor"] == c1["choices"]["floor"] and c0["test"]["floor"] == c1["test"]["floor"]
        assert c0["choices"]["ssl_linear"] == c1["choices"]["ssl_linear"]  # chosen on the same native-grid valid
        assert c0["test"]["ssl_linear"]["nmse"] != c1["test"]["ssl_linear"]["nmse"]

    for extra, msg in (
        (["task=timestep", "transfer.extrapolate=0.7"], "task=regression only"),
        (["transfer.extrapolate=0.7", "regression.n_labels=20"], "regression.n_labels=20: only"),
    ):
        bad = cli(eval_main, *common, *extra, f"out_dir={tmp_path / 'bad'}")
        assert bad.returncode == 2 and msg in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr
        assert not (tmp_path / "bad").exists()


def test_bad_settings_are_refused_in_one_line(burgers_splits, tmp_path):
    """A quantile outside (0, 1), a grid factor <= 0, non-numbers; a grid factor that gives no whole number of
    points, 2D or non-periodic data, a test grid smaller than the evaluation crop; a target that is not one scalar
    per trajectory; a grid change together with a corruption: each a UserError of one line naming the value."""
    from ssl_pde.eval.config import compose_eval_config
    from ssl_pde.eval.setup import load_inputs

    cases = [
        (dict(extrapolate=0.0), "transfer.extrapolate=0.0"),
        (dict(extrapolate=1.0), "transfer.extrapolate=1.0"),
        (dict(extrapolate=-0.3), "transfer.extrapolate=-0.3"),
        (dict(extrapolate=float("nan")), "transfer.extrapolate=nan"),
        (dict(extrapolate="most"), "transfer.extrapolate='most'"),
        (dict(resolution=0.0), "transfer.resolution=0.0"),
        (dict(resolution=-2.0), "transfer.resolution=-2.0"),
        (dict(resolution=float("inf")), "transfer.resolution=inf"),
        (dict(resolution=True), "transfer.resolution=True"),
    ]
    for kw, msg in cases:
        with pytest.raises(UserError) as e:
            Transfer(**kw)
        assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert compose_eval_config(["ckpt=a.pt"]).transfer.is_plain
    assert compose_eval_config(["ckpt=a.pt", "transfer.resolution=2"]).transfer == Transfer(resolution=2.0)
    with pytest.raises(UserError, match=r"transfer\.extrapolate=1\.5"):
        compose_eval_config(["ckpt=a.pt", "transfer.extrapolate=1.5"])
    t = Transfer(resolution=0.3)
    for args, msg in (
        ((64, 1, True), r"0\.3 x 64 stored points is not a whole number"),
        ((64, 2, False), "1D periodic data only, these data are 2D"),
        ((64, 1, False), "need a periodic x"),
    ):
        with pytest.raises(UserError, match=msg):
            t.test_points(*args)
    assert Transfer(resolution=2.0).test_points(64, 1, True) == 128 and Transfer().test_points(7, 2, False) == 7
    data, root = burgers_splits
    ckpt = save_encoder(tmp_path / "encoder.pt")  # crop_x = 32 of 64 stored points
    with pytest.raises(UserError, match=r"transfer\.resolution=0\.25 \(64 -> 16 points\): crop \(8, 32\) larger"):
        load_inputs([ckpt], root, torch.device("cpu"), transfer=Transfer(resolution=0.25))
    with pytest.raises(UserError, match=r"transfer\.resolution=2 with corrupt noise=0\.05"):
        load_inputs([ckpt], root, torch.device("cpu"), corrupt=Corruption(noise=0.05), transfer=Transfer(resolution=2))
    vec = {s: Split(data[s].data, torch.stack([data[s].y, data[s].y], 1)) for s in ("train", "valid", "test")}
    with pytest.raises(UserError, match="one scalar parameter per trajectory"):
        restrict_for_extrapolation(vec, 0.7, "nu")
    one = data["valid"].subset(torch.argmax(data["valid"].y)[None])  # a single test trajectory above the threshold
    with pytest.raises(UserError, match=r"1 test trajectories have nu above the threshold .* at least 2"):
        restrict_for_extrapolation({**data, "test": one}, 0.7, "nu")
    with pytest.raises(UserError, match=r"0 test trajectories have nu above"):
        restrict_for_extrapolation({**data, "test": data["test_b"]}, 0.7, "nu")
    ok = load_inputs([ckpt], root, torch.device("cpu"), transfer=Transfer(extrapolate=0.7, resolution=2.0))
    assert ok.splits["test"].data["u"].shape[-1] == 128 and ok.transfer["extrapolate"]["n"]["test"] == len(
        ok.splits["test"]
    )
