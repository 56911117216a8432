"""Barlow Twins and SimCLR's InfoNCE beside VICReg: exact values against hand computations, closed forms, gradients,
reduced precision, DDP gradients with gather, the objective configs and a short pretraining run of each."""

from __future__ import annotations

import csv
import datetime
import math
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssl_pde.core.errors import DivergenceError, UserError
from ssl_pde.losses import (
    BarlowTwins,
    SimCLR,
    VICReg,
    barlow_twins_loss,
    cross_correlation,
    info_nce_loss,
    standardize,
    vicreg_loss,
)

# Lightning, Hydra and the command line are imported in the tests that use them: the DDP test's two spawned ranks
# import this module, and the losses alone start several seconds faster.
F64 = torch.float64


# ---------------------------------------------------------------------------------------------- Barlow Twins
def _hand_barlow(
    a: list[list[float]], b: list[list[float]], lam: float, eps: float, ddof: int = 0
) -> tuple[float, float, float]:
    """(loss, on_diag, off_diag) by explicit loops: per-column standardisation with the variance over N - ddof
    (0: biased, the implemented convention), C = a_n^T b_n / N."""
    n, d = len(a), len(a[0])

    def standardised(z):
        cols = []
        for j in range(d):
            m = sum(z[i][j] for i in range(n)) / n
            var = sum((z[i][j] - m) ** 2 for i in range(n)) / (n - ddof)
            cols.append([(z[i][j] - m) / math.sqrt(var + eps) for i in range(n)])
        return cols  # cols[j][i]

    an, bn = standardised(a), standardised(b)
    c = [[sum(an[p][i] * bn[q][i] for i in range(n)) / n for q in range(d)] for p in range(d)]
    on = sum((1 - c[p][p]) ** 2 for p in range(d))
    off = sum(c[p][q] ** 2 for p in range(d) for q in range(d) if p != q)
    return on + lam * off, on, off


def test_barlow_hand_computed_3x2():
    """3 x 2 views whose correlations are known in closed form (eps = 0: C is the Pearson correlation matrix):
    columns a = (1, 0, -1), b = (1, -2, 1) against -a and d = (0, 1, -1) give C_11 = -1, C_22 = -sqrt(3)/2,
    C_12 = corr(a, d) = 1/2, C_21 = corr(b, -a) = 0. Shifting and scaling the columns changes nothing."""
    z1 = torch.tensor([[1.0, 1.0], [0.0, -2.0], [-1.0, 1.0]], dtype=F64)
    z2 = torch.tensor([[-1.0, 0.0], [0.0, 1.0], [1.0, -1.0]], dtype=F64)
    on = (1 - -1) ** 2 + (1 + math.sqrt(3) / 2) ** 2
    off = 0.5**2 + 0.0**2
    c = cross_correlation(z1, z2, eps=0.0)
    expected_c = torch.tensor([[-1.0, 0.5], [0.0, -math.sqrt(3) / 2]], dtype=F64)
    torch.testing.assert_close(c, expected_c, rtol=0, atol=1e-12)
    for lam in (5e-3, 2.0):
        for x1, x2 in (
            (z1, z2),
            (3 * z1 + torch.tensor([5.0, -1.0], dtype=F64), z2 * torch.tensor([0.5, 4.0], dtype=F64) + 7),
        ):
            out = barlow_twins_loss(x1, x2, off_diag_coeff=lam, eps=0.0, gather=False)
            assert out["on_diag"].item() == pytest.approx(on, rel=1e-12)
            assert out["off_diag"].item() == pytest.approx(off, rel=1e-12)
            assert out["loss"].item() == pytest.approx(on + lam * off, rel=1e-12)


def test_barlow_matches_loops_with_eps_and_default_lambda():
    """Random 5 x 3 views, default eps (1e-5, inside the square root of the biased variance) and lambda (5e-3)."""
    gen = torch.Generator().manual_seed(0)
    z1 = 0.01 * torch.randn(5, 3, generator=gen, dtype=F64)  # small variance: the eps placement matters
    z2 = z1 @ torch.randn(3, 3, generator=gen, dtype=F64) + 0.01 * torch.randn(5, 3, generator=gen, dtype=F64)
    loss, on, off = _hand_barlow(z1.tolist(), z2.tolist(), lam=5e-3, eps=1e-5)
    out = barlow_twins_loss(z1, z2, gather=False)
    for key, value in (("loss", loss), ("on_diag", on), ("off_diag", off)):
        assert out[key].item() == pytest.approx(value, rel=1e-12), key
    # the other conventions give clearly different numbers on this input: no eps, the unbiased variance
    for other in (
        _hand_barlow(z1.tolist(), z2.tolist(), 5e-3, 0.0),
        _hand_barlow(z1.tolist(), z2.tolist(), 5e-3, 1e-5, 1),
    ):
        assert abs(out["loss"].item() - other[0]) > 1e-3


def test_barlow_identical_views_have_zero_on_diagonal():
    """Perfectly correlated (identical) views: C_ii = 1, so the invariance term is 0 (exactly with eps = 0; with the
    default eps ~ (eps / var)^2). With the unbiased (N - 1) variance it would be D / N^2 instead."""
    z = torch.randn(16, 8, generator=torch.Generator().manual_seed(0), dtype=F64)
    out = barlow_twins_loss(z, z, eps=0.0, gather=False)
    assert out["on_diag"].item() == pytest.approx(0.0, abs=1e-24)
    torch.testing.assert_close(cross_correlation(z, z, eps=0.0).diagonal(), torch.ones(8, dtype=F64))
    assert barlow_twins_loss(z, z, gather=False)["on_diag"].item() < 1e-8
    # decorrelated +-1 columns (a Hadamard matrix without its constant column): the whole loss vanishes
    h = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    h = torch.kron(torch.kron(h, h), h)[:, 1:].to(F64)  # (8, 7)
    assert barlow_twins_loss(h, 2 * h, eps=0.0, gather=False)["loss"].item() == pytest.approx(0.0, abs=1e-24)
    sz = standardize(h, eps=0.0)
    torch.testing.assert_close(sz.pow(2).mean(0), torch.ones(7, dtype=F64))  # biased: unit mean square per column


# ---------------------------------------------------------------------------------------------- InfoNCE
def _hand_info_nce(a: list[list[float]], b: list[list[float]], tau: float) -> float:
    """Mean over the 2N anchors of -log softmax of the positive among all other anchors, by explicit loops."""
    z = a + b
    m, n = len(z), len(a)
    u = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in z]
    total = 0.0
    for i in range(m):
        pos = i + n if i < n else i - n
        logits = {j: sum(p * q for p, q in zip(u[i], u[j], strict=True)) / tau for j in range(m) if j != i}
        total += -logits[pos] + math.log(sum(math.exp(v) for v in logits.values()))
    return total / m


def test_info_nce_hand_computed_3x2():
    """3 x 2 views (unnormalised, one negative-correlated pair) against the explicit-loop computation."""
    z1 = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=F64)
    z2 = torch.tensor([[2.0, 0.5], [-0.5, 1.0], [1.0, -1.0]], dtype=F64)
    for tau in (0.1, 0.5, 1.0):
        out = info_nce_loss(z1, z2, temperature=tau, gather=False)
        assert out["loss"].item() == pytest.approx(_hand_info_nce(z1.tolist(), z2.tolist(), tau), rel=1e-12)
    cos_pos = [2 / math.sqrt(4.25), 2 / math.sqrt(4 * 1.25), 0.0]
    assert out["pos_sim"].item() == pytest.approx(sum(cos_pos) / 3, rel=1e-12)


def test_info_nce_orthogonal_one_hot_closed_form():
    """One-hot embeddings: with z1 = z2 = e_i (orthogonal across samples) every anchor has its positive at cosine 1
    and 2N - 2 negatives at cosine 0, so loss = log(1 + (2N - 2) exp(-1 / T)); with the second view on other axes
    (e_{N+i}) every logit is 0 and loss = log(2N - 1). Scaling the inputs changes nothing (L2-normalised)."""
    n, tau = 3, 0.5
    e = torch.eye(2 * n, dtype=F64)
    z1, z2 = e[:n], e[n:]
    out = info_nce_loss(z1, z1, temperature=tau, gather=False)
    assert out["loss"].item() == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(-1 / tau)), rel=1e-12)
    assert out["pos_sim"].item() == pytest.approx(1.0) and out["neg_sim"].item() == pytest.approx(0.0, abs=1e-15)
    scaled = info_nce_loss(3 * z1, 0.25 * z1, temperature=tau, gather=False)["loss"].item()
    assert scaled == pytest.approx(out["loss"].item(), rel=1e-12)
    out = info_nce_loss(z1, z2, temperature=0.1, gather=False)
    assert out["loss"].item() == pytest.approx(math.log(2 * n - 1), rel=1e-12)
    assert out["pos_sim"].item() == 0.0 and out["neg_sim"].item() == 0.0
    # default temperature is 0.1
    assert info_nce_loss(z1, z1, gather=False)["loss"].item() == pytest.approx(math.log(1 + 4 * math.exp(-10)))


# ---------------------------------------------------------------------------------------------- both losses
LOSSES = {
    "barlow": lambda z1, z2, gather=False: barlow_twins_loss(z1, z2, gather=gather),
    "infonce": lambda z1, z2, gather=False: info_nce_loss(z1, z2, gather=gather),
}
#: every objective's loss (VICReg's too) for the tests that hold for all of them
ALL_LOSSES = {**LOSSES, "vicreg": lambda z1, z2, gather=False: vicreg_loss(z1, z2, gather=gather)}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_flows_to_both_views(name):
    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(8, 4, generator=gen, requires_grad=True)
    z2 = torch.randn(8, 4, generator=gen, requires_grad=True)
    LOSSES[name](z1, z2)["loss"].backward()
    for z in (z1, z2):
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_loss_decreases_linear_model(name):
    """~20 Adam steps of a tiny linear projector on fixed random views lower the loss."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=gen)
    x1, x2 = x + 0.1 * torch.randn(64, 16, generator=gen), x + 0.1 * torch.randn(64, 16, generator=gen)
    torch.manual_seed(0)
    model = torch.nn.Linear(16, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = ALL_LOSSES[name](model(x1), model(x2))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_reduced_precision_computed_in_float32(name):
    """bf16 inputs and bf16 autocast: every term is computed, and returned, in float32."""
    gen = torch.Generator().manual_seed(0)
    mix = torch.randn(16, 16, generator=gen) * 0.3
    z1, z2 = (torch.randn(32, 16, generator=gen) @ mix for _ in range(2))
    fn = LOSSES[name]
    ref = fn(z1, z2)
    b1, b2 = z1.bfloat16(), z2.bfloat16()
    low, exact = fn(b1, b2), fn(b1.float(), b2.float())  # same values, float32 path
    for key, value in low.items():
        assert value.dtype == torch.float32, key
        torch.testing.assert_close(value, exact[key], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(value, ref[key], rtol=3e-2, atol=3e-3)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        auto = fn(z1, z2)
    for key, value in auto.items():
        assert value.dtype == torch.float32, key
        torch.testing.assert_close(value, ref[key], rtol=1e-6, atol=1e-6)


def test_bad_inputs_raise():
    """N < 2, malformed shapes and a non-positive temperature raise a ValueError."""
    z = torch.zeros(1, 4)
    for fn in LOSSES.values():
        with pytest.raises(ValueError, match="at least 2"):
            fn(z, z)
        with pytest.raises(ValueError, match=r"\(N, D\)"):
            fn(torch.zeros(4, 3), torch.zeros(4, 2))
        with pytest.raises(ValueError, match=r"\(N, D\)"):
            fn(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2"):
        standardize(z)
    for tau in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            info_nce_loss(torch.randn(4, 2), torch.randn(4, 2), temperature=tau)


def test_objectives_wrap_the_losses():
    """The config-facing objectives call their loss with their coefficients; bad coefficients are user errors."""
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    pairs = (
        (VICReg(2.0, 3.0, 5.0), vicreg_loss(z1, z2, 2.0, 3.0, 5.0)),
        (BarlowTwins(off_diag_coeff=0.1, eps=0.0), barlow_twins_loss(z1, z2, 0.1, eps=0.0)),
        (SimCLR(temperature=0.3), info_nce_loss(z1, z2, 0.3)),
    )
    for objective, expected in pairs:
        out = objective(z1, z2)
        assert out.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(out[key], value, rtol=0, atol=0)
    assert (VICReg.name, BarlowTwins.name, SimCLR.name) == ("VICReg", "Barlow Twins", "SimCLR")
    with pytest.raises(UserError, match="temperature"):
        SimCLR(temperature=0.0)
    with pytest.raises(UserError, match="off_diag_coeff"):
        BarlowTwins(off_diag_coeff=-1.0)


# ---------------------------------------------------------------------------------------------- DDP
WORLD, N_GLOBAL, D_IN, D_OUT = 2, 8, 6, 4


def _ddp_problem() -> tuple[torch.Tensor, torch.Tensor, torch.nn.Linear]:
    """Fixed global views (N_GLOBAL, D_IN) and a linear model with fixed initial weights (float64)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N_GLOBAL, D_IN, generator=gen, dtype=F64)
    x1 = x + 0.3 * torch.randn(N_GLOBAL, D_IN, generator=gen, dtype=F64)
    x2 = x + 0.3 * torch.randn(N_GLOBAL, D_IN, generator=gen, dtype=F64)
    torch.manual_seed(2)
    return x1, x2, torch.nn.Linear(D_IN, D_OUT, dtype=F64)


def _ddp_worker(rank: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    # rank 0 hosts the TCPStore (as torchrun/Lightning's env:// does); the store also sequences the teardown below
    store = dist.TCPStore("127.0.0.1", port, WORLD, is_master=rank == 0, timeout=datetime.timedelta(seconds=60))
    dist.init_process_group("gloo", store=store, rank=rank, world_size=WORLD)
    try:
        x1, x2, model = _ddp_problem()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        n = N_GLOBAL // WORLD
        local = slice(rank * n, (rank + 1) * n)
        results = {}
        for name, fn in sorted(ALL_LOSSES.items()):
            model.zero_grad()
            z1, z2 = ddp(torch.cat([x1[local], x2[local]])).chunk(2)  # one forward for both views
            out = fn(z1, z2, gather=True)
            out["loss"].backward()  # DDP averages param.grad over ranks (all_reduce SUM / world size)
            results[name] = {
                "out": {k: v.detach() for k, v in out.items()},
                "grads": [p.grad.clone() for p in model.parameters()],
            }
        torch.save(results, Path(out_dir) / f"{rank}.pt")
    finally:
        # Teardown without a message in flight on the gloo pairs: a gloo barrier is not enough (a rank may leave it,
        # tear down and exit before its reply reaches the peer, which then waits for ever), so the ranks meet on the
        # store instead; rank 1 tears down first, and rank 0, whose exit takes the store down, last.
        store.set(f"done{rank}", "1")
        store.wait([f"done{r}" for r in range(WORLD)])
        if rank == 0:
            store.wait(["left1"])
        dist.destroy_process_group()
        if rank == 1:
            store.set("left1", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gather_gradients_match_single_process(tmp_path):
    """2 gloo ranks, half the batch each, gather=True, for VICReg, Barlow Twins and InfoNCE: per-rank terms and
    DDP-averaged gradients equal the single-process ones on the concatenated batch (for InfoNCE: the negatives
    come from the whole global batch)."""
    ctx = mp.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, port, str(tmp_path))) for r in range(WORLD)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * WORLD

    res = [torch.load(tmp_path / f"{r}.pt") for r in range(WORLD)]
    for name, fn in sorted(ALL_LOSSES.items()):
        x1, x2, model = _ddp_problem()
        ref = fn(model(x1), model(x2), gather=False)
        ref["loss"].backward()
        n = N_GLOBAL // WORLD
        local = fn(model(x1[:n]), model(x2[:n]), gather=False)["loss"]
        assert abs(local.item() - ref["loss"].item()) > 1e-3  # the local-batch loss differs: gather matters
        for r in range(WORLD):
            for key, value in ref.items():
                torch.testing.assert_close(res[r][name]["out"][key], value.detach(), rtol=1e-10, atol=1e-12)
            for g, p in zip(res[r][name]["grads"], model.parameters(), strict=True):
                torch.testing.assert_close(g, p.grad, rtol=1e-8, atol=1e-10, msg=lambda m, name=name: f"{name}: {m}")


# ---------------------------------------------------------------------------------------------- configs and module
VICREG_METHOD = {
    "_target_": "ssl_pde.lit.vicreg.VICRegModule",
    "sim_coeff": 25.0,
    "std_coeff": 25.0,
    "cov_coeff": 1.0,
    "weight_decay": 1.0e-6,
    "warmup_frac": 0.05,
    "probe_param": "${pde.probe_param}",
    "probe_log": "${pde.probe_log}",
    "seed": "${seed}",
    "fixed_views": False,
    "channels_last": True,  # memory layout only (added with the CPU benchmarks)
    "corrupt": {"noise": 0.0, "drop_x": 0.0, "drop_t": 0.0},  # the messy-observations augmentation, off
    "projector": {
        "_target_": "ssl_pde.models.projector.Projector",
        "in_dim": "${last:${encoder.widths}}",
        "widths": [512, 512, 512],
    },
}


def test_vicreg_method_config_unchanged(tmp_path):
    """method=vicreg (the default) composes to the same module config as before the objective was a choice."""
    from omegaconf import OmegaConf

    from tests.conftest import compose_cfg

    for overrides in ([], ["method=vicreg", "experiment=burgers_vicreg"]):
        cfg = compose_cfg("pretrain", [*overrides, f"run_dir={tmp_path}"])
        assert OmegaConf.to_container(cfg.method) == VICREG_METHOD


@pytest.mark.parametrize(
    ("method", "cls", "values"),
    [("barlow", BarlowTwins, {"off_diag_coeff": 5e-3, "eps": 1e-5}), ("simclr", SimCLR, {"temperature": 0.1})],
)
def test_method_composes_with_an_experiment_and_instantiates(method, cls, values, tmp_path):
    """method=barlow / simclr with experiment=burgers_vicreg: the VICReg module settings and projector, the
    objective with its defaults; the module embeds two views and scores them; objective values override in struct
    mode, a misspelt one is refused."""
    import hydra
    from omegaconf import OmegaConf

    from ssl_pde.lit.vicreg import JointEmbeddingModule
    from tests.conftest import compose_cfg

    cfg = compose_cfg("pretrain", ["experiment=burgers_vicreg", f"method={method}", f"run_dir={tmp_path}"])
    shared = {k: v for k, v in VICREG_METHOD.items() if not k.endswith("_coeff") and k != "_target_"}
    method_cfg = OmegaConf.to_container(cfg.method)
    assert {k: method_cfg[k] for k in shared} == shared and "sim_coeff" not in method_cfg
    views = hydra.utils.instantiate(cfg.augment)
    enc = hydra.utils.instantiate(cfg.encoder)
    model = hydra.utils.instantiate(cfg.method, encoder=enc, views=views, optimizer=hydra.utils.instantiate(cfg.optim))
    assert type(model) is JointEmbeddingModule and model.objective == cls(**values)
    assert model.hparams.probe_param == "nu" and "objective" not in model.hparams
    x = torch.randn(4, views.channels, 16, 32, generator=torch.Generator().manual_seed(0))
    model.eval()  # BatchNorm on 4 samples, no statistics update
    with torch.no_grad():
        z1, z2 = model.projector(model.encoder(x)), model.projector(model.encoder(x.flip(-1)))
    terms = model.objective(z1, z2)
    assert z1.shape == (4, 512) and torch.isfinite(terms["loss"])
    key, value = next(iter(values.items()))
    cfg = compose_cfg("pretrain", [f"method={method}", f"method.objective.{key}={2 * value}", f"run_dir={tmp_path}"])
    assert hydra.utils.instantiate(cfg.method.objective) == cls(**{**values, key: 2 * value})
    with pytest.raises(Exception, match="lambd"):
        compose_cfg("pretrain", [f"method={method}", "method.objective.lambd=1.0", f"run_dir={tmp_path}"])


class _Flat(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


@pytest.mark.parametrize(
    ("objective", "needle"),
    [
        (BarlowTwins(), "non-finite Barlow Twins loss at step 0 (on_diag nan, off_diag nan)"),
        (SimCLR(), "non-finite SimCLR loss at step 0 (pos_sim nan, neg_sim nan)"),
        (None, "non-finite VICReg loss at step 0 (invariance nan, variance nan, covariance nan)"),
    ],
)
def test_non_finite_loss_names_the_objective(objective, needle):
    """A NaN loss stops training with a DivergenceError naming the objective and its terms (VICRegModule's message
    as before)."""
    from ssl_pde.lit.vicreg import JointEmbeddingModule, VICRegModule

    args = (_Flat(), torch.nn.Identity(), None, None)
    model = VICRegModule(*args) if objective is None else JointEmbeddingModule(*args, objective=objective)
    v = torch.full((4, 2, 3), float("nan"))
    with pytest.raises(DivergenceError) as info:
        model.training_step({"views": (v, v)}, 0)
    assert needle in str(info.value), str(info.value)


@pytest.mark.parametrize(("method", "terms"), [("barlow", ("on_diag", "off_diag")), ("simclr", ("pos_sim", "neg_sim"))])
def test_short_pretraining_run(method, terms, cli, burgers_data, tmp_path):
    """A few steps of debug=smoke pretraining with each new objective: finite logged losses and terms, the online
    probe, and an encoder.pt that rebuilds and loads; a VICReg run started in the same run directory is refused
    with one line (exit 2) and leaves the encoder untouched."""
    import hydra
    from omegaconf import OmegaConf

    from ssl_pde.cli.pretrain import main
    from ssl_pde.models.encoders import ResNet18

    run = tmp_path / "run"
    res = cli(
        main,
        "debug=smoke",
        f"method={method}",
        f"data.dir={burgers_data}",
        f"run_dir={run}",
        "logger=csv",
    )
    assert res.returncode == 0, res.stderr[-3000:]
    with open(run / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert "train/invariance" not in rows[0]
    losses = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    assert len(losses) >= 6 and all(math.isfinite(x) for x in losses), losses
    for term in terms:
        assert all(math.isfinite(float(r[f"train/{term}"])) for r in rows if r["train/loss"]), term
    assert any(r["val/probe_nmse"] for r in rows) and any(r["val/rankme"] for r in rows)
    assert OmegaConf.load(run / "config.yaml").method.objective._target_.endswith(("BarlowTwins", "SimCLR"))
    exported = torch.load(run / "encoder.pt", weights_only=True)
    enc = hydra.utils.instantiate(exported["encoder"])
    enc.load_state_dict(exported["state_dict"])
    assert isinstance(enc, ResNet18) and exported["pde"] == "burgers"
    before = (run / "encoder.pt").read_bytes()
    other = "vicreg" if method != "vicreg" else "barlow"
    res = cli(main, "debug=smoke", f"method={other}", f"data.dir={burgers_data}", f"run_dir={run}", "logger=csv")
    assert res.returncode == 2 and f"holds a run of {'BarlowTwins' if method == 'barlow' else 'SimCLR'}" in res.stderr
    assert (run / "encoder.pt").read_bytes() == before  # another objective's run never overwrites this one
