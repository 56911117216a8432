"""One table (and optionally a figure) comparing frozen encoders by their ridge probe: an ablation screen.

    python scripts/probe_table.py --out docs/runs/burgers_study/views_ep240_s0 \\
        "base=runs/views/vw_base/probe_curve.json" "no Galilean boost=runs/views/vw_nogal/probe_curve.json" ...

Each ``NAME=PATH`` is a ``probe_curve.json`` of ``scripts/probe_curve.py`` (the ``ssl_linear`` probe of one or
more frozen encoders, per label count and cell). The first is the reference. Per label count the table gives each
encoder's valid score (the metric its ridge strength was chosen by, NMSE by default: what a choice may read), its
test NMSE (mean ± std over cells, ddof=1), and the paired ratio reference / encoder of the test NMSE with its 95 %
bootstrap interval over the cells (above 1: the encoder is better than the reference; pretraining seeds and label
draws, or label draws only with one seed). Cells are paired by (pretraining seed index, label draw): the runs must
share the PDE, parameter, valid and test sizes, selection metric, label draws and label counts (checked), and give
their encoders (``--ckpt`` of probe_curve.py) in the same pretraining-seed order (not checked: the files do not
record the seeds). Unreadable or unpaired files end with one line and exit status 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ssl_pde.core.cli import UserError, fail
from ssl_pde.eval.stats import mean_std, ratio_interval


def load_curve(name: str, path: Path) -> dict[str, Any]:
    """A probe_curve.json, read into per-label-count grids: ``grids[n] = (cell keys, valid (P, D), test (P, D))``."""
    try:
        doc = json.loads(Path(path).read_text())
        grids: dict[int, tuple[list[tuple[int, int]], np.ndarray, np.ndarray]] = {}
        for r in doc["rows"]:
            n = int(r["n_labels"])
            if n in grids:
                raise ValueError(f"{n} labels appear twice")
            grids[n] = cell_grids(r["per_cell"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{name}: {path} is not a readable probe_curve.json ({type(e).__name__}: {e})") from None
    return {"name": name, "path": str(path), "doc": doc, "grids": grids}


def cell_grids(per_cell: list[dict[str, Any]]) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """The cell keys (pretraining seed index, label draw) in order and the (P, D) grids of the valid score and of
    the probe's test NMSE; ValueError unless the cells form a complete seeds x draws grid of finite positive
    scores."""
    by = {}
    for c in per_cell:
        key = (int(c["pretrain_seed_index"]), int(c["label_draw"]))
        if key in by:
            raise ValueError(f"cell {key} appears twice")
        by[key] = (float(c["valid"]), float(c["ssl_linear"]["nmse"]))
    seeds, draws = sorted({k[0] for k in by}), sorted({k[1] for k in by})
    if not by or len(by) != len(seeds) * len(draws):
        raise ValueError(f"cells {sorted(by)} do not form a seeds x draws grid")
    valid = np.array([[by[(s, d)][0] for d in draws] for s in seeds])
    test = np.array([[by[(s, d)][1] for d in draws] for s in seeds])
    if not (np.isfinite(test).all() and (test > 0).all() and np.isfinite(valid).all()):
        raise ValueError(f"scores must be finite (test NMSE positive), got {test.tolist()}")
    return sorted(by), valid, test


def table(curves: list[dict[str, Any]]) -> dict[str, Any]:
    """Per label count, every curve's valid and test NMSE and its paired test ratio to the first curve."""
    ref = curves[0]
    for c in curves[1:]:
        for field in ("pde", "param", "n_valid", "n_test", "select_metric"):
            if c["doc"].get(field) != ref["doc"].get(field):
                raise UserError(
                    f"{c['name']}: {field} {c['doc'].get(field)!r} differs from {ref['name']}'s "
                    f"{ref['doc'].get(field)!r}: not paired"
                )
        draws, ref_draws = sorted(c["doc"].get("label_draws") or []), sorted(ref["doc"].get("label_draws") or [])
        if draws != ref_draws or set(c["grids"]) != set(ref["grids"]):
            raise UserError(
                f"{c['name']}: label draws {draws} / label counts {sorted(c['grids'])} differ from {ref['name']}'s "
                f"{ref_draws} / {sorted(ref['grids'])}: not paired"
            )
    out: dict[str, Any] = {
        "reference": ref["name"],
        "param": ref["doc"].get("param"),
        "select_metric": ref["doc"].get("select_metric") or "nmse",
        "by_labels": {},
    }
    for n in sorted(ref["grids"]):
        ref_keys, _, ref_test = ref["grids"][n]
        rows, levels = [], ""
        for c in curves:
            keys, valid, test = c["grids"][n]
            if keys != ref_keys:
                raise UserError(f"{c['name']}: cells {keys} at {n} labels differ from {ref['name']}'s {ref_keys}")
            text, record = "-", None
            if c is not ref:
                r = ratio_interval(ref_test, test, names=(c["name"], ref["name"]))
                levels, record = r.levels, r.record("nmse")
                if np.unique(np.round(np.log(r.cells), 12)).size == 1:  # every cell alike (e.g. all labels drawn)
                    text = f"{r.ratio:.2f} (all cells alike: no interval)"
                    record.update(low=None, high=None, verdict="no interval")
                else:
                    text = f"{r.text()} ({r.verdict})"
            rows.append(
                {"name": c["name"], "valid": mean_std(valid), "test": mean_std(test), "ratio": record, "text": text}
            )
        best = min(rows, key=lambda row: row["valid"][0])["name"]
        out["by_labels"][str(n)] = {"rows": rows, "best_on_valid": best, "interval_over": levels or "-"}
    return out


def markdown(res: dict[str, Any]) -> str:
    lines = []
    for n, block in res["by_labels"].items():
        lines += [
            f"**{n} labels** (ratio: {res['reference']} / encoder, test NMSE; interval over {block['interval_over']})",
            "",
            f"| encoder | valid {res['select_metric'].upper()} | test NMSE | ratio to the reference |",
            "|---|---|---|---|",
        ]
        for row in block["rows"]:
            v = f"{row['valid'][0]:.3f}"
            v = f"**{v}**" if row["name"] == block["best_on_valid"] else v
            lines.append(f"| {row['name']} | {v} | {row['test'][0]:.3f} ± {row['test'][1]:.3f} | {row['text']} |")
        lines += ["", f"Best on valid (bold): {block['best_on_valid']}.", ""]
    return "\n".join(lines)


def figure(res: dict[str, Any], path: Path) -> None:
    """Valid and test NMSE per encoder (bars, one panel per label count; test with its spread over cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = list(res["by_labels"].items())
    fig, axes = plt.subplots(1, len(blocks), figsize=(5.5 * len(blocks), 0.45 * len(blocks[0][1]["rows"]) + 1.5))
    for ax, (n, block) in zip(np.atleast_1d(axes), blocks, strict=True):
        rows = block["rows"]
        y = np.arange(len(rows))
        ax.barh(y - 0.2, [r["valid"][0] for r in rows], 0.4, label="valid")
        ax.barh(y + 0.2, [r["test"][0] for r in rows], 0.4, xerr=[r["test"][1] for r in rows], label="test")
        ax.set_yticks(y, [r["name"] for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel(f"frozen ridge probe NMSE of {res['param']}")
        ax.set_title(f"{n} labels")
        ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("curves", nargs="+", help="NAME=PATH of a probe_curve.json; the first is the reference")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md (suffixes appended)")
    p.add_argument("--figure", type=Path, default=None, help="a PNG of the valid and test NMSE per encoder")
    args = p.parse_args(argv)
    try:
        curves = []
        for item in args.curves:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise UserError(f"expected NAME=PATH, got {item!r}")
            if any(c["name"] == name for c in curves):
                raise UserError(f"the name {name!r} is given twice")
            curves.append(load_curve(name, Path(path)))
        res = table(curves)
    except UserError as e:  # one line, exit status 2, nothing written
        fail(str(e))
    res["curves"] = {c["name"]: c["path"] for c in curves}
    text = markdown(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.figure is not None:  # first: a figure that cannot be drawn leaves no table behind
        figure(res, args.figure)
    Path(f"{args.out}.json").write_text(json.dumps(res, indent=1))
    Path(f"{args.out}.md").write_text(text)
    print(text)
    return res


if __name__ == "__main__":
    main()
