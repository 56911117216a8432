"""The regression protocol in process: choices on valid only (the test split read once), equal searches, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_pde.augment.views import LieViews
from ssl_pde.core.errors import UserError
from ssl_pde.eval.protocol import RegressionConfig, cell_seed, evaluate_regression
from ssl_pde.eval.train import Search
from ssl_pde.metrics import best_constant
from ssl_pde.models.encoders import ResNet18
from tests.eval_helpers import AUG, make_encoder, no_time, tiny_regression


def test_choices_never_read_the_test_split(burgers_splits):
    """The swap test: the same evaluation with the test split replaced by another records exactly the same
    choices (with the same valid scores) in every cell, while the test scores change. The frozen encoders are
    not modified; the floor's constants are the best constants of each draw's labels; every trained method
    searched the same number of candidates; the grid is 2 pretraining seeds x 2 label draws."""
    data, _ = burgers_splits
    encs = [make_encoder(0), make_encoder(1)]
    before = [{k: v.clone() for k, v in e.state_dict().items()} for e in encs]
    cfg = tiny_regression()
    runs = []
    for test in ("test", "test_b"):
        s = {"train": data["train"], "valid": data["valid"], "test": data[test]}
        runs.append(
            evaluate_regression(
                encs, lambda: ResNet18(3, (8, 16, 32, 64)), LieViews(**AUG), s, cfg, True, torch.device("cpu")
            )
        )
    a, b = runs
    assert [no_time(c["choices"]) for c in a["cells"]] == [no_time(c["choices"]) for c in b["cells"]]
    assert [c["test"] for c in a["cells"]] != [c["test"] for c in b["cells"]]
    for e, sd in zip(encs, before, strict=True):
        assert all(torch.equal(v, sd[k]) for k, v in e.state_dict().items())
    assert [(c["pretrain_seed_index"], c["label_draw"]) for c in a["cells"]] == [(0, 0), (1, 0), (0, 1), (1, 1)]
    lab = data["train"].subset(np.sort(np.random.default_rng(1).choice(24, 16, replace=False)))
    assert a["cells"][2]["choices"]["floor"]["nmse"] == best_constant("nmse", lab.y).tolist()
    assert {a["budget"][m]["candidates"] for m in ("ssl_mlp", "ssl_finetune", "supervised")} == {2}
    assert set(a["comparisons"]) == {
        f"supervised/{m}" for m in ("ssl_linear", "ssl_mlp", "ssl_finetune", "random_init")
    }
    c = a["comparisons"]["supervised/ssl_finetune"]
    assert c["interval_over"] == "pretraining seeds and label draws" and c["low"] <= c["ratio"] <= c["high"]
    assert np.array(c["cells"]).shape == (2, 2)
    for m, row in a["summary"].items():  # the floor depends on the draw only: its spread is over the draws
        vals = [cell["test"][m]["nmse"] for cell in a["cells"] if m != "floor" or cell["pretrain_seed_index"] == 0]
        assert row["nmse"] == pytest.approx([np.mean(vals), np.std(vals, ddof=1)]), m
    for cell in a["cells"]:  # the MLP head's choice is the candidate with the lowest valid score
        ch = cell["choices"]["ssl_mlp"]
        assert ch["valid"] == min(r["valid"] for r in ch["candidates"])


def test_a_one_encoder_run_repeats_that_encoders_cells_of_a_multi_encoder_run(burgers_splits):
    """Cells are seeded by the encoder's pretraining seed and the label draw (``cell_seed``), not by the encoder's
    position: evaluating encoder B alone (seed 7) gives exactly B's cells of the run over [A (seed 5), B], so
    one-encoder runs merge into the multi-encoder run; the supervised network of B's cells differs from A's (its
    training noise is sampled per cell, not repeated), and seeds must be distinct."""
    data, _ = burgers_splits
    cpu, fresh = torch.device("cpu"), lambda: ResNet18(3, (8, 16, 32, 64))
    encs = [make_encoder(0), make_encoder(1)]
    cfg = tiny_regression(methods=["ssl_finetune", "supervised"], label_draws=[0, 1])
    both = evaluate_regression(encs, fresh, LieViews(**AUG), data, cfg, True, cpu, encoder_seeds=[5, 7])
    alone = evaluate_regression(encs[1:], fresh, LieViews(**AUG), data, cfg, True, cpu, encoder_seeds=[7])
    b_cells = [c for c in both["cells"] if c["pretrain_seed_index"] == 1]
    assert [c["train_seed"] for c in alone["cells"]] == [cell_seed(7, 0), cell_seed(7, 1)]
    assert [(c["test"], no_time(c["choices"])) for c in alone["cells"]] == [
        (c["test"], no_time(c["choices"])) for c in b_cells
    ]
    a_cells = [c for c in both["cells"] if c["pretrain_seed_index"] == 0]
    assert all(a["test"]["supervised"] != b["test"]["supervised"] for a, b in zip(a_cells, b_cells, strict=True))
    with pytest.raises(ValueError, match="must be distinct"):
        evaluate_regression(encs, fresh, LieViews(**AUG), data, cfg, True, cpu, encoder_seeds=[3, 3])


def test_uneven_searches_and_bad_settings_are_refused(burgers_splits):
    data, _ = burgers_splits

    def run(cfg: RegressionConfig) -> dict:
        cpu = torch.device("cpu")
        return evaluate_regression([make_encoder(0)], lambda: make_encoder(0), LieViews(**AUG), data, cfg, True, cpu)

    uneven = tiny_regression(supervised=Search(lrs=[1e-3, 3e-3, 1e-2], max_steps=4, eval_every=2, patience=1, batch=8))
    for cfg, msg in (
        (uneven, "same number of candidates"),
        (tiny_regression(n_labels=99), "n_labels=99 must lie in [8, 24]"),
        (tiny_regression(methods=["ssl_linear"]), "must include supervised"),
        (tiny_regression(methods=["ssl_linear", "supervised", "lasso"]), "unknown method 'lasso'"),
        (tiny_regression(select_metric="mae"), "unknown select_metric 'mae'"),
        (tiny_regression(label_draws=[0, 0]), "give distinct label-draw seeds"),
        (
            tiny_regression(finetune=Search(lrs=[1e-3, 3e-3], max_steps=8, eval_every=2, patience=1, batch=8)),
            "same step budget: max_steps 8 vs 4",
        ),
        (
            tiny_regression(mlp=Search(lrs=[1e-3], max_steps=5, eval_every=5, patience=0, views=["crops", "lie"])),
            "views do not apply",
        ),
    ):
        with pytest.raises(UserError, match=msg.replace("[", r"\[")):
            run(cfg)


def test_search_edges_count_bounded_searches():
    """A chosen learning rate at either end of the grid, and a chosen run best in the last tenth of a full budget,
    are counted; an interior, early-stopped choice is not; ridge choices (no search) give nothing."""
    from ssl_pde.eval.protocol import search_edges

    def choice(lr, best, run, others=300):
        cands = [{"lr": x, "views": "crops", "best_step": 10, "steps_run": others} for x in (1e-3, 3e-3, 1e-2)]
        for c in cands:
            if c["lr"] == lr:
                c.update(best_step=best, steps_run=run)
        return {"chosen": {"lr": lr, "views": "crops", "best_step": best}, "candidates": cands}

    cells = [choice(1e-2, 300, 300), choice(1e-3, 100, 150), choice(3e-3, 280, 300), choice(3e-3, 50, 100)]
    assert search_edges(cells) == {"lr_at_edge": 2, "still_improving": 2, "cells": 4}
    assert search_edges([{"lambda": 1.0, "valid": 0.1}]) == {}


def test_batchnorm_recalibration_is_the_plain_average_of_the_given_batches():
    """Hand-computed: after :func:`recalibrate_batchnorm` a BatchNorm's running mean is the mean of the batch
    means and its running variance the mean of the unbiased batch variances (equal batches), its momentum is
    restored and the model is left in eval mode; a model without BatchNorm keeps its state."""
    from ssl_pde.eval.regression import recalibrate_batchnorm

    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(16, 3, generator=g) * (k + 1) + k for k in range(3)]
    bn = torch.nn.BatchNorm1d(3, momentum=0.3)
    model = torch.nn.Sequential(bn).train()
    model(torch.randn(8, 3, generator=g) + 5.0)  # stale statistics that a missing reset would blend in
    bn.num_batches_tracked.fill_(7)
    recalibrate_batchnorm(model, lambda: iter(batches))
    mean = torch.stack([b.mean(0) for b in batches]).mean(0)
    var = torch.stack([b.var(0, unbiased=True) for b in batches]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-6) and torch.allclose(bn.running_var, var, atol=1e-5)
    assert bn.momentum == 0.3 and not model.training
    assert int(bn.num_batches_tracked) == 3
    lin = torch.nn.Linear(3, 2).train()
    before = {k: v.clone() for k, v in lin.state_dict().items()}
    recalibrate_batchnorm(lin, lambda: iter(batches))
    assert all(torch.equal(v, before[k]) for k, v in lin.state_dict().items()) and not lin.training


def test_recalibration_reads_the_labelled_training_inputs_only_in_near_equal_batches(burgers_splits):
    """The kept network's BatchNorm buffers are exactly those re-estimated under its kept weights on one pass of
    the labelled set's training inputs (so they match the restored weights, and no valid or test trajectory
    entered them); a labelled set one larger than the batch is cut into two near-equal batches, never into a
    batch of one (which BatchNorm refuses to normalise in training mode)."""
    import copy

    from ssl_pde.eval.regression import fit_network, recalibrate_batchnorm, training_inputs

    data, _ = burgers_splits
    cpu, views = torch.device("cpu"), LieViews(**AUG)
    lab = data["train"].subset(np.arange(17))
    assert [len(x) for x in training_inputs(views, "crops", lab, cpu, 16, seed=1)] == [9, 8]
    spec = Search(lrs=[1e-2], max_steps=4, eval_every=2, patience=0, batch=16, views=["crops"])
    torch.manual_seed(0)
    fit = fit_network(lambda: ResNet18(3, (8, 16, 32, 64)), views, lab, data["valid"], spec, True, "nmse", 0, cpu)
    again = copy.deepcopy(fit.model)
    recalibrate_batchnorm(again, lambda: training_inputs(views, "crops", lab, cpu, 16, seed=1))
    kept, redone = fit.model.state_dict(), again.state_dict()
    assert all(torch.equal(kept[k], redone[k]) for k in kept)


class _NoRandomViews(LieViews):
    """Views whose random training view must never be drawn (the ``eval`` inputs read ``eval_view`` only)."""

    def view(self, *a, **k):
        raise AssertionError("a random training view was drawn")


def test_network_training_on_eval_inputs_scores_in_eval_mode_as_it_trained(burgers_splits):
    """``views=[eval]`` trains on the deterministic evaluation inputs only (a random view is never drawn), and
    with the BatchNorm statistics recalibrated the kept network predicts the labelled set in eval mode as it
    does in training mode on the whole set at once (up to the biased/unbiased variance, 1/n per layer): after a few
    high-learning-rate steps the running statistics of training would not (the failure that kept NS's
    supervised baseline at a constant)."""
    from ssl_pde.eval.regression import fit_network, training_inputs

    data, _ = burgers_splits
    lab, valid = data["train"].subset(np.arange(16)), data["valid"]
    views, cpu = _NoRandomViews(**AUG), torch.device("cpu")
    spec = Search(lrs=[3e-2], max_steps=6, eval_every=3, patience=0, batch=16, views=["eval"])
    fitted = {}
    for recal in (True, False):
        torch.manual_seed(0)
        fitted[recal] = fit_network(
            lambda: ResNet18(3, (8, 16, 32, 64)), views, lab, valid, spec, True, "nmse", 0, cpu, recalibrate_bn=recal
        )
        assert fitted[recal].choice["chosen"]["views"] == "eval"
    (x,) = list(training_inputs(views, "eval", lab, cpu, 16, seed=0))
    gaps = {}
    for recal, fit in fitted.items():
        net = fit.model
        with torch.no_grad():
            eval_out = net.eval()(x)
            train_out = net.train()(x)
        net.eval()
        gaps[recal] = float((eval_out - train_out).abs().max() / train_out.abs().max())
    assert gaps[True] < 0.2 and gaps[False] > 0.5, gaps  # measured: 0.13 (deep 1x4 maps: n = 64) and 1.2
    # head_init=probe runs through the same path: after one step at a negligible rate the kept head is the ridge
    # probe of the initial network's features on the labelled evaluation inputs (standardised log target)
    from ssl_pde.eval.regression import Regressor, probe_head

    lp = Search(lrs=[1e-12], max_steps=1, eval_every=1, patience=0, batch=16, views=["eval"], head_init="probe")
    fit = fit_network(lambda: ResNet18(3, (8, 16, 32, 64)), views, lab, valid, lp, True, "nmse", 0, cpu)
    torch.manual_seed(0)
    ref = Regressor(ResNet18(3, (8, 16, 32, 64)))
    z = lab.y.log()
    probe_head(ref, x, ((z - z.mean()) / z.std()).float())
    torch.testing.assert_close(fit.model.head.weight, ref.head.weight, atol=1e-6, rtol=1e-5)
    assert float(ref.head.weight.detach().abs().max()) > 1e-3  # not a zero head that any start would match
    mixed = Search(lrs=[1e-3, 3e-3], max_steps=4, eval_every=2, patience=1, batch=8, views=["eval"])
    with pytest.raises(UserError, match="same training inputs"):
        tiny_regression(supervised=mixed).check(24)
    bad = Search(lrs=[1e-3, 3e-3], max_steps=4, eval_every=2, patience=1, batch=8, views=["x"])
    with pytest.raises(UserError, match=r"views from \(crops, lie, eval\)"):
        tiny_regression(supervised=bad, finetune=bad).check(24)


def test_training_input_rule_takes_the_lowest_geometric_mean_and_refuses_uneven_parts(tmp_path):
    """scripts/choose_train_inputs.py's rule, hand-computed: kind A scores (0.01, 0.001) and B (0.004, 0.004);
    A's arithmetic mean (0.0055) is higher than B's but its geometric mean (0.00316) is lower, so A is chosen;
    parts that miss a cell or repeat one are refused."""
    import importlib.util
    import json
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "choose_train_inputs.py"
    spec = importlib.util.spec_from_file_location("choose_train_inputs", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)

    def row(kind, method, v):
        return {"n_labels": 64, "method": method, "inputs": kind, "valid": v}

    rows = [row("A", "ssl_finetune", 0.01), row("A", "supervised", 0.001)]
    rows += [row("B", "ssl_finetune", 0.004), row("B", "supervised", 0.004)]
    assert mod.decide(rows, {"metric": "mse"}, tmp_path) == "A"
    doc = json.loads((tmp_path / "train_inputs.json").read_text())
    assert doc["geometric_mean_valid"]["A"] == pytest.approx(0.01**0.5 * 0.001**0.5)
    with pytest.raises(UserError, match="same sizes and methods"):
        mod.decide(rows[:3], {}, tmp_path)
    with pytest.raises(UserError, match="appears twice"):
        mod.decide([*rows, rows[0]], {}, tmp_path)


class _LinearEncoder(torch.nn.Module):
    """(N, D_in) -> (N, D) by one linear map; ``out_dim`` as the encoders have."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.lin, self.out_dim = torch.nn.Linear(d_in, d), d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_probe_head_is_the_ridge_with_the_leave_one_out_choice_checked_by_refitting():
    """``head_init=probe``: the head equals the closed-form ridge (with intercept) on the encoder's features, at
    the strength whose leave-one-out error is lowest; the closed-form leave-one-out errors are checked against
    brute force (n refits per strength, each leaving one trajectory out)."""
    from ssl_pde.eval.regression import PROBE_RIDGE_GRID, Regressor, probe_head

    torch.manual_seed(0)
    n, d_in, d = 20, 6, 12
    x = torch.randn(n, d_in)
    model = Regressor(_LinearEncoder(d_in, d)).double()
    y = torch.randn(n, dtype=torch.float64) + (x.double() @ torch.randn(d_in, dtype=torch.float64))
    rel = probe_head(model, x.double(), y)
    with torch.no_grad():
        f = model.encoder(x.double())
    scale = float(((f - f.mean(0)) ** 2).sum()) / d

    def ridge(fr: torch.Tensor, yr: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Ridge with an unpenalised intercept, by the normal equations."""
        a = torch.cat([fr, torch.ones(len(fr), 1, dtype=fr.dtype)], 1)
        pen = torch.eye(d + 1, dtype=fr.dtype) * lam
        pen[-1, -1] = 0
        sol = torch.linalg.solve(a.T @ a + pen, a.T @ yr)
        return sol[:-1], sol[-1]

    loo = []
    for r in PROBE_RIDGE_GRID:
        errs = []
        for i in range(n):
            keep = torch.arange(n) != i
            w, b = ridge(f[keep], y[keep], r * scale)
            errs.append(float(f[i] @ w + b - y[i]) ** 2)
        loo.append(np.mean(errs))
    assert rel == PROBE_RIDGE_GRID[int(np.argmin(loo))]
    w, b = ridge(f, y, rel * scale)
    torch.testing.assert_close(model.head.weight[0].detach(), w)
    torch.testing.assert_close(model.head.bias[0].detach(), b)


def test_backbone_learning_rate_scales_the_encoder_only():
    """``backbone_lr_mult``: the encoder's parameters train at ``lr * mult`` and the head at ``lr`` (a tiny
    multiplier leaves the encoder almost where it was while the head moves); bad settings are refused."""
    from ssl_pde.eval.regression import Regressor
    from ssl_pde.eval.train import param_groups, train_early_stopped

    torch.manual_seed(0)
    model = Regressor(_LinearEncoder(4, 8))
    groups = param_groups(model, 1e-2, 0.1)
    assert [g["lr"] for g in groups] == [pytest.approx(1e-3), 1e-2]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.encoder.parameters()}
    x, y = torch.randn(32, 4), torch.randn(32)
    enc0, head0 = (copy_params(model.encoder), copy_params(model.head))
    spec = Search(lrs=[1e-2], max_steps=20, eval_every=20, patience=0, weight_decay=0.0, backbone_lr_mult=1e-6)
    train_early_stopped(model, lambda _: ((model(x) - y) ** 2).mean(), lambda: 0.0, 1e-2, spec)
    enc_move = max(float((a - b).abs().max()) for a, b in zip(copy_params(model.encoder), enc0, strict=True))
    head_move = max(float((a - b).abs().max()) for a, b in zip(copy_params(model.head), head0, strict=True))
    assert enc_move < 1e-6 < 1e-2 < head_move, (enc_move, head_move)
    with pytest.raises(UserError, match="backbone_lr_mult must be positive, got 0"):
        Search(lrs=[1e-3], max_steps=1, eval_every=1, patience=0, backbone_lr_mult=0)
    with pytest.raises(UserError, match="head_init must be one of default, probe, got 'lp'"):
        Search(lrs=[1e-3], max_steps=1, eval_every=1, patience=0, head_init="lp")


def copy_params(m: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]
