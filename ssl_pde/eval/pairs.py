"""Pairing two regression evaluations cell by cell: the (pretraining seed index, label draw) cells of two
``results.json`` files of ``ssl-pde-eval`` with the same labelled sets, and each method's test scores as a
(seeds, draws) grid for :func:`ssl_pde.eval.stats.ratio_interval`.

Used by ``scripts/corruption_table.py`` (the same encoders on clean and corrupted observations) and
``scripts/compare_encoders.py`` (other encoders, e.g. a mixed run's export against one PDE's own encoder, on the
same data and labels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ssl_pde.core.errors import UserError

#: Methods in table order (the floor reads no encoder and no observation: left out).
METHODS = ("ssl_linear", "ssl_mlp", "ssl_finetune", "random_init", "supervised")
#: Top-level fields of results.json that two runs of one evaluation share.
SAME_EVALUATION = ("pde", "param", "log_target", "n_labels", "n_valid", "n_test", "corruption", "transfer")
#: Config keys that may differ between runs of one evaluation (``pde_id``: read by ``task=pde_id`` only, and absent
#: from runs stored before it existed).
FREE_KEYS = ("ckpt", "out_dir", "device", "wandb", "pde_id")
#: Keys of config sections that may differ likewise (``baseline_cache``: where the supervised networks are kept,
#: which does not change them; :mod:`ssl_pde.eval.baseline_cache`).
FREE_SUBKEYS = {"regression": ("baseline_cache",)}
#: Settings added to ``configs/eval.yaml`` after runs were stored, with the value those runs had in effect.
LATER_KEYS = {"eval_crops": [1, 1]}


def settings(doc: dict[str, Any]) -> dict[str, Any]:
    """A run's stored evaluation settings without the free keys, older runs given the later keys' defaults."""
    out = {**LATER_KEYS, **{k: v for k, v in (doc.get("config") or {}).items() if k not in FREE_KEYS}}
    for section, keys in FREE_SUBKEYS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def settings_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The config keys whose values differ between two runs' :func:`settings`, sorted."""
    sa, sb = settings(a), settings(b)
    return sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))


def load_results(path: Path, what: str) -> dict[str, Any]:
    """A regression ``results.json`` of ``ssl-pde-eval``; a UserError names the file otherwise (``what``: the
    tool, for the message)."""
    try:
        doc = json.loads(Path(path).read_text())
        if doc["task"] != "regression":
            raise UserError(f"{path}: task={doc['task']}, {what} compare regression results")
        if not isinstance(doc["result"]["cells"], list) or not doc["result"]["cells"]:
            raise KeyError("result.cells")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a results.json of ssl-pde-eval ({type(e).__name__}: {e})") from None
    return doc


def cells(doc: dict[str, Any]) -> dict[tuple[int, int], dict[str, Any]]:
    """The evaluation's cells by (pretraining seed index, label draw)."""
    return {(int(c["pretrain_seed_index"]), int(c["label_draw"])): c for c in doc["result"]["cells"]}


def check_same_labels(first: dict[str, Any], other: dict[str, Any], name: str, keys: tuple[str, ...]) -> None:
    """Refuse ``other`` (named ``name``) unless it has ``first``'s top-level ``keys`` (e.g. ``n_labels``, ``pde``),
    label draws, number of pretraining seeds, selection metric and cells, each cell with the same labelled targets
    (checked through the floor, which is fitted on the drawn labels alone)."""
    for key in keys:
        if first.get(key) != other.get(key):
            raise UserError(f"{name}: its {key} {other.get(key)!r} differs from the first file's {first.get(key)!r}")
    for key in ("label_draws", "n_pretrain_seeds", "select_metric"):
        if first["result"].get(key) != other["result"].get(key):
            raise UserError(f"{name}: its {key} differs from the first file's")
    a, b = cells(first), cells(other)
    if set(a) != set(b):
        raise UserError(f"{name}: its (pretraining seed, label draw) cells differ from the first file's")
    for k in a:
        fa, fb = a[k].get("choices", {}).get("floor"), b[k].get("choices", {}).get("floor")
        if fa != fb:
            raise UserError(f"{name}: cell {k} has other labelled targets than the first file's (another label draw)")


def score_grid(doc: dict[str, Any], method: str, metric: str) -> np.ndarray:
    """(P, D) test scores of ``method`` over (pretraining seed index, label draw), draws in the file's order."""
    draws = list(doc["result"]["label_draws"])
    g = np.full((int(doc["result"]["n_pretrain_seeds"]), len(draws)), np.nan)
    for c in doc["result"]["cells"]:
        g[int(c["pretrain_seed_index"]), draws.index(c["label_draw"])] = c["test"][method][metric]
    if np.isnan(g).any():
        raise UserError(f"{method}: some cells have no {metric} score")
    return g
