"""Which equation is this? A linear probe of a mixed encoder's representation, beside trivial features.

A mixed pretraining run (``experiment=mixed_1d_vicreg``) exports one ``encoder_<pde>.pt`` per PDE of its mix: the
same weights, each with its PDE's views. :func:`evaluate_pde_id` builds every PDE's deterministic evaluation inputs
with that PDE's own export (the inputs every other evaluation reads), and asks how well a linear classifier reads
the equation from

* the SSL representation,
* the same architecture at a random initialisation (what the architecture alone gives), and
* trivial features of the same evaluation inputs (:func:`trivial_features`: per channel mean, spread, mean
  absolute increments in time and space, and the shape of the spatial power spectrum),

each on the stored fields and on amplitude-normalised ones (:func:`normalise_amplitude`: every trajectory divided
by its RMS, so the PDEs' different amplitude ranges cannot separate them). The trivial rows show what a
representation has to beat: what the input format reveals at a glance (in ``coords`` mode the coordinate channels
carry each PDE's time step and grid spacing, so trivial features separate the PDEs perfectly there).

Protocol: the classifier is ridge regression on one-hot classes (standardised features, the class with the largest
output), its strength chosen on the valid splits' accuracy, the test splits read once; the floor is the train
splits' majority class. Each pretraining seed (one mixed run) is one row of results; the comparisons are paired
differences of test accuracy (per test trajectory, correct or not) with a two-level bootstrap over pretraining seeds
and test trajectories (:func:`ssl_pde.eval.stats.bootstrap_log_mean` resamples the mean of a (seeds, items)
array).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.eval.data import Split
from ssl_pde.eval.regression import crop_mean, embed
from ssl_pde.eval.stats import bootstrap_log_mean, mean_std
from ssl_pde.metrics import ridge_fit_predict

Tensor = torch.Tensor

#: Feature sets in table order: (key, words).
FEATURES = (
    ("ssl", "SSL encoder (frozen)"),
    ("random_init", "random-init encoder (control)"),
    ("trivial", "trivial features of the inputs"),
)
NO_DIFFERENCE = "no difference shown"


@dataclass
class PdeIdConfig:
    """``task=pde_id``: the inputs (stored and / or amplitude-normalised), the ridge strengths searched on valid,
    the bootstrap replicates."""

    normalise: list[bool]
    ridge_lambdas: list[float]
    n_boot: int


@dataclass
class Member:
    """One PDE of a mixed run: its export's views and its splits (``train``, ``valid``, ``test``)."""

    pde: str
    views: Any
    splits: dict[str, Split]


def load_mixed_run(
    ckpt: Path, data_dir: Path, device: torch.device
) -> tuple[list[Member], nn.Module, Callable[[], nn.Module], int | None]:
    """One mixed run from any of its exports ``ckpt`` (``<run>/encoder_<pde>.pt``): its members' exports beside it
    (every PDE of the run's mix with a positive weight), each with its views and its splits under
    ``data_dir/<dataset>/``; the frozen encoder (checked to be the same weights in every export), a builder of its
    architecture, and the run's pretraining seed.

    Raises:
        UserError: not a mixed run's export, a member's export missing or with other weights, a split missing.
    """
    from ssl_pde.eval.setup import build_views, load_encoder, pretrain_seed

    enc, exp, fresh = load_encoder(Path(ckpt), device)
    mix = exp.get("mixed")
    if not isinstance(mix, dict) or not isinstance(mix.get("mix"), dict):
        raise UserError(
            f"{ckpt} is a single-PDE export: task=pde_id reads the exports of a mixed run "
            "(experiment=mixed_1d_vicreg writes encoder_<pde>.pt for each PDE of its mix)"
        )
    pdes = [p for p, w in mix["mix"].items() if float(w) > 0]
    if len(pdes) < 2:
        raise UserError(f"{ckpt}: its run mixed {pdes}; identification needs at least two PDEs")
    members = []
    for pde in pdes:
        path = Path(ckpt).parent / f"encoder_{pde}.pt"
        if not path.is_file():
            raise UserError(f"{path} not found: the run {mix.get('name')!r} mixed {pdes}, each needs its export")
        _, e, _ = load_encoder(path, torch.device("cpu"))
        same = e["state_dict"].keys() == exp["state_dict"].keys() and all(
            torch.equal(e["state_dict"][k], exp["state_dict"][k]) for k in exp["state_dict"]
        )
        if not same:
            raise UserError(f"{path}: its weights differ from {ckpt}'s; the exports of one mixed run share them")
        views = build_views(e, path, None)
        root = Path(data_dir) / str(e.get("dataset") or pde)
        splits = {}
        for s in ("train", "valid", "test"):
            ds = TrajectoryDataset(root / s, [e["probe_param"]], preload=True)
            views.check_dataset(ds)
            splits[s] = Split.load(ds, e["probe_param"])
        members.append(Member(pde, views, splits))
    return members, enc, fresh, pretrain_seed(Path(ckpt), exp)


def normalise_amplitude(u: Tensor) -> Tensor:
    """``u`` (N, T, C, X...) with each trajectory and channel divided by its RMS over frames and points (a zero
    field stays zero)."""
    dims = tuple(d for d in range(1, u.dim()) if d != 2)
    rms = u.double().pow(2).mean(dim=dims, keepdim=True).sqrt()
    return (u.double() / rms.clamp_min(1e-30)).to(u.dtype)


def normalised(s: Split) -> Split:
    """The split with :func:`normalise_amplitude` applied to its fields; times, grids and parameters unchanged."""
    return Split({**s.data, "u": normalise_amplitude(s.data["u"])}, s.y, dict(s.params))


def trivial_features(v: Tensor) -> Tensor:
    """Hand-made features of evaluation inputs ``v`` (N, C, T, X): per channel the mean, the standard deviation,
    the mean absolute increment between frames and between points, and the spatial power spectrum (``|rfft_x|^2``
    averaged over frames, as fractions of its total, then log) -> (N, C (4 + X // 2 + 1)) float32."""
    v = v.double()
    mean, std = v.mean(dim=(2, 3)), v.std(dim=(2, 3))
    dt = v.diff(dim=2).abs().mean(dim=(2, 3))
    dx = v.diff(dim=3).abs().mean(dim=(2, 3))
    power = torch.fft.rfft(v, dim=3).abs().pow(2).mean(dim=2)  # (N, C, X // 2 + 1)
    shape = (power / power.sum(dim=2, keepdim=True).clamp_min(1e-300)).clamp_min(1e-12).log()
    return torch.cat([mean, std, dt, dx, shape.flatten(1)], dim=1).float()


def one_hot_ridge(f_fit: Tensor, c_fit: Tensor, f_eval: Tensor, lam: float, k: int) -> Tensor:
    """Classes (M,) of ``f_eval`` (M, D) by ridge regression of the one-hot ``c_fit`` (N,) on ``f_fit`` (N, D)."""
    onehot = torch.nn.functional.one_hot(c_fit, k).double()
    return ridge_fit_predict(f_fit, onehot, f_eval, lam).argmax(dim=1)


def classify(feats: dict[str, Tensor], classes: dict[str, Tensor], lambdas: Sequence[float], k: int) -> dict[str, Any]:
    """The ridge classifier fitted on ``feats['train']`` with the strength of best ``valid`` accuracy (the largest
    among ties: the simplest fit), scored once on ``test``.

    Returns: ``lambda``, ``valid_accuracy``, every strength's valid accuracy, ``accuracy`` and ``balanced_accuracy``
    on test, ``correct`` (M,) per test item, the ``confusion`` matrix (true class x predicted class)."""
    scores = {}
    for lam in lambdas:
        pred = one_hot_ridge(feats["train"], classes["train"], feats["valid"], float(lam), k)
        scores[float(lam)] = float((pred == classes["valid"]).double().mean())
    best = max(scores.values())
    lam = max(lam for lam, s in scores.items() if s == best)
    pred = one_hot_ridge(feats["train"], classes["train"], feats["test"], lam, k)
    true = classes["test"]
    correct = (pred == true).double()
    confusion = torch.zeros(k, k, dtype=torch.int64)
    confusion.index_put_((true, pred), torch.ones_like(true), accumulate=True)
    per_class = [float(correct[true == c].mean()) for c in range(k) if (true == c).any()]
    return {
        "lambda": lam,
        "valid_accuracy": best,
        "valid_scores": scores,
        "accuracy": float(correct.mean()),
        "balanced_accuracy": float(np.mean(per_class)),
        "correct": correct.numpy(),
        "confusion": confusion.tolist(),
    }


def paired_difference(a: np.ndarray, b: np.ndarray, n_boot: int, names: tuple[str, str]) -> dict[str, Any]:
    """Test accuracy of ``a`` minus ``b``, paired per (pretraining seed, test item) of the (P, M) correctness arrays,
    with the two-level bootstrap's 95 % interval and a verdict (``names``: (a, b))."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    reps = bootstrap_log_mean(d, n_boot)
    lo, hi = (float(x) for x in np.quantile(reps, [0.025, 0.975]))
    verdict = f"{names[0]} ahead" if lo > 0 else f"{names[1]} ahead" if hi < 0 else NO_DIFFERENCE
    over = "pretraining seeds and test trajectories" if d.shape[0] > 1 else "test trajectories (one pretraining seed)"
    return {"difference": float(d.mean()), "low": lo, "high": hi, "verdict": verdict, "interval_over": over}


def evaluate_pde_id(
    runs: list[list[Member]],
    encoders: list[nn.Module],
    fresh: Callable[[], nn.Module],
    cfg: PdeIdConfig,
    device: torch.device,
    seeds: Sequence[int],
) -> dict[str, Any]:
    """PDE identification for each pretraining seed's mixed run.

    Args:
        runs: per pretraining seed, its members (one per PDE, the same PDEs in the same order for every seed).
        encoders: per pretraining seed, the frozen encoder (eval mode) every member of that run shares.
        fresh: a builder of the architecture at a random initialisation (seeded per run from ``seeds``).
        cfg: inputs, ridge strengths, bootstrap replicates.
        seeds: per run, the seed of its random-init control.

    Returns:
        ``pdes`` (class order), ``floor`` (test accuracy of the train splits' majority class), ``rows``: per
        ``<features>/<stored|normalised>`` the per-seed results of :func:`classify` (without the correctness
        arrays) and their mean and std, and ``comparisons`` (:func:`paired_difference`) of the SSL representation
        against the random-init control and the trivial features, on each kind of input.
    """
    pdes = [m.pde for m in runs[0]]
    k = len(pdes)
    classes = {
        s: torch.cat([torch.full((len(m.splits[s]),), i, dtype=torch.int64) for i, m in enumerate(runs[0])])
        for s in ("train", "valid", "test")
    }
    majority = int(torch.bincount(classes["train"], minlength=k).argmax())
    rows: dict[str, dict[str, Any]] = {}
    correct: dict[str, list[np.ndarray]] = {}
    for run, enc, seed in zip(runs, encoders, seeds, strict=True):
        torch.manual_seed(int(seed))
        control = fresh().to(device).eval()
        for norm in cfg.normalise:
            inputs = "normalised" if norm else "stored"
            sets: dict[str, dict[str, list[Tensor]]] = {f: {s: [] for s in classes} for f, _ in FEATURES}
            for m in run:
                for s in classes:
                    split = normalised(m.splits[s]) if norm else m.splits[s]
                    sets["ssl"][s].append(embed(enc, m.views, split, device))
                    sets["random_init"][s].append(embed(control, m.views, split, device))
                    sets["trivial"][s].append(crop_mean(trivial_features, m.views, split, device, 256))
            for f, _ in FEATURES:
                key = f"{f}/{inputs}"
                r = classify({s: torch.cat(v) for s, v in sets[f].items()}, classes, cfg.ridge_lambdas, k)
                correct.setdefault(key, []).append(r.pop("correct"))
                rows.setdefault(key, {"features": f, "inputs": inputs, "seeds": []})["seeds"].append(r)
    for row in rows.values():
        for metric in ("accuracy", "balanced_accuracy", "valid_accuracy"):
            row[metric] = mean_std(np.array([r[metric] for r in row["seeds"]]))
    comparisons = {}
    for norm in cfg.normalise:
        inputs = "normalised" if norm else "stored"
        for other, words in (("random_init", "random-init"), ("trivial", "trivial features")):
            a, b = np.stack(correct[f"ssl/{inputs}"]), np.stack(correct[f"{other}/{inputs}"])
            comparisons[f"ssl-{other}/{inputs}"] = paired_difference(a, b, cfg.n_boot, ("SSL", words))
    return {
        "pdes": pdes,
        "n": {s: {p: len(m.splits[s]) for p, m in zip(pdes, runs[0], strict=True)} for s in classes},
        "floor": float((classes["test"] == majority).double().mean()),
        "rows": rows,
        "comparisons": comparisons,
    }


def _pm(v: Sequence[float], n: int) -> str:
    return f"{v[0]:.3f} ± {v[1]:.3f}" if n > 1 else f"{v[0]:.3f}"


def pde_id_table(result: dict[str, Any]) -> str:
    """The Markdown tables of :func:`evaluate_pde_id`'s result."""
    n_seeds = len(next(iter(result["rows"].values()))["seeds"])
    lines = [
        f"PDEs: {', '.join(result['pdes'])}; test trajectories per PDE: "
        f"{', '.join(str(v) for v in result['n']['test'].values())}; "
        + (f"{n_seeds} pretraining seeds, mean ± std." if n_seeds > 1 else "one pretraining seed."),
        "",
        "| features | inputs | test accuracy | balanced accuracy | valid accuracy |",
        "|---|---|---|---|---|",
        f"| majority class of train (floor) | - | {result['floor']:.3f} | {1 / len(result['pdes']):.3f} | - |",
    ]
    words = dict(FEATURES)
    for row in result["rows"].values():
        cells = " | ".join(_pm(row[m], n_seeds) for m in ("accuracy", "balanced_accuracy", "valid_accuracy"))
        lines.append(f"| {words[row['features']]} | {row['inputs']} | {cells} |")
    lines += [
        "",
        "| comparison | inputs | difference in test accuracy | 95 % interval | interval over | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for key, c in result["comparisons"].items():
        pair, inputs = key.split("/")
        other = "random-init" if pair.endswith("random_init") else "trivial features"
        lines.append(
            f"| SSL - {other} | {inputs} | {c['difference']:+.3f} | [{c['low']:+.3f}, {c['high']:+.3f}] | "
            f"{c['interval_over']} | {c['verdict']} |"
        )
    return "\n".join(lines)
