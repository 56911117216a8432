"""Label-efficiency curves of frozen encoders: the ``ssl_linear`` probe's test error against the number of labels.

The train, valid and test splits are embedded once (the deterministic evaluation crops); for each label
count and label draw the labelled subset is drawn as :func:`ssl_pde.eval.protocol.evaluate_regression` draws
it, the ridge strength is chosen on valid, and the test split is scored after every choice of the curve
is made, beside each metric's best-constant floor. No trained method: this asks whether the information is
in the representation at all (many labels) or only hard to reach from few.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ssl_pde.core.errors import UserError
from ssl_pde.eval.data import draw_labels
from ssl_pde.eval.regression import Embedder, from_target, metric_names, ridge_select, to_target
from ssl_pde.eval.setup import EvalInputs
from ssl_pde.eval.stats import mean_std
from ssl_pde.metrics import REGRESSION_METRICS, floor_scores, regression_scores, ridge_fit_predict


def probe_curve(
    inp: EvalInputs,
    labels: Sequence[int],
    draws: Sequence[int] = (0, 1, 2),
    lambdas: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
    select_metric: str = "nmse",
) -> dict[str, Any]:
    """The curve of every encoder of ``inp`` (pretraining seeds x label draws per label count).

    Returns a document with ``rows``: per label count, ``per_cell`` test scores of ``ssl_linear`` and
    ``floor`` with the chosen strength and its valid score, ``<method>_<metric>`` = [mean, std (ddof=1)] on
    test, and ``valid_<select_metric>``: the probe's valid score, by which encoders or input settings (window,
    fields) are compared: a choice between them must be made on it, never on the test columns."""
    train, valid, test = inp.splits["train"], inp.splits["valid"], inp.splits["test"]
    if select_metric not in REGRESSION_METRICS:
        raise UserError(f"unknown select metric {select_metric!r} (have: {', '.join(REGRESSION_METRICS)})")
    bad = [n for n in labels if not 8 <= n <= len(train)]
    if bad:
        raise UserError(f"labels {bad[0]} must lie in [8, {len(train)}] (train trajectories)")
    metrics = metric_names(train.y, valid.y, test.y)
    fitted = []  # (n, p, d, features of lab, z, lam, score): every choice, before the test split is read
    embedders = [Embedder(e, inp.views, inp.device) for e in inp.encoders]
    for n in labels:
        for d in draws:
            idx = torch.as_tensor(draw_labels(len(train), n, int(d)))
            y_lab = train.y[idx].double()
            z = to_target(y_lab, inp.log_target)
            for p, emb in enumerate(embedders):
                f_lab = emb(train)[idx]
                lam, scores = ridge_select(
                    f_lab, z, emb(valid), valid.y, lambdas, log_target=inp.log_target, metric=select_metric
                )
                fitted.append((n, p, int(d), f_lab, z, y_lab, lam, scores[lam]))
    rows: dict[int, list[dict[str, Any]]] = {n: [] for n in labels}
    for n, p, d, f_lab, z, y_lab, lam, score in fitted:  # the test split, read once
        pred = ridge_fit_predict(f_lab, z, embedders[p](test), lam).squeeze(-1).clamp(z.min(), z.max())
        rows[n].append(
            {
                "pretrain_seed_index": p,
                "label_draw": d,
                "lambda": lam,
                "valid": score,
                "ssl_linear": regression_scores(from_target(pred, inp.log_target), test.y, metrics),
                "floor": floor_scores(y_lab, test.y, metrics),
            }
        )
    out = []
    for n in labels:
        row: dict[str, Any] = {"n_labels": n, "per_cell": rows[n]}
        row[f"valid_{select_metric}"] = list(mean_std(np.array([c["valid"] for c in rows[n]])))  # compare settings here
        for m in ("ssl_linear", "floor"):
            for k in metrics:
                row[f"{m}_{k}"] = list(mean_std(np.array([c[m][k] for c in rows[n]])))
        out.append(row)
    return {
        "ckpts": [str(c) for c in inp.ckpts],
        "pde": inp.pde,
        "param": inp.param,
        "eval_window": getattr(inp.views, "eval_window", None),
        "eval_crops": list(getattr(inp.views, "eval_grid", (1, 1))),
        "label_draws": list(draws),
        "n_pretrain_seeds": len(inp.encoders),
        "select_metric": select_metric,
        "metrics": list(metrics),
        "n_valid": len(valid),
        "n_test": len(test),
        "rows": out,
    }


def curve_table(doc: dict[str, Any]) -> str:
    """Markdown: per label count, the probe's and the floor's test MSE and NMSE (mean ± std)."""
    lines = [
        f"{doc['pde']} {doc['param']}: ssl_linear probe of {', '.join(doc['ckpts'])} (eval window: "
        f"{doc['eval_window']}, eval crops: {doc.get('eval_crops', [1, 1])}), ridge strength chosen on valid "
        f"({doc['n_valid']}), {doc['n_test']} test "
        f"trajectories, {doc['n_pretrain_seeds']} pretraining seed(s) × label draws {doc['label_draws']}",
        "",
        "| labels | valid score (choose settings on it) | SSL + linear, test MSE | floor (best constant), MSE "
        "| SSL / floor | SSL + linear, NMSE | floor, NMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        s, f = r["ssl_linear_mse"], r["floor_mse"]
        lines.append(
            f"| {r['n_labels']} | {r['valid_' + doc['select_metric']][0]:.3g} ({doc['select_metric']}) "
            f"| {s[0]:.3g} ± {s[1]:.2g} | {f[0]:.3g} ± {f[1]:.2g} | {s[0] / f[0]:.2f} "
            f"| {r['ssl_linear_nmse'][0]:.3g} | {r['floor_nmse'][0]:.3g} |"
        )
    return "\n".join(lines)
