"""One figure of label efficiency: linear-probe curves of several encoders, supervised points, the floor.

    python scripts/plot_probe_curves.py --out docs/figures/ns2d_cpu_label_efficiency.png \\
        --curve "smoke + velocities=runs/.../pretrain/probe_curve_start/probe_curve.json" \\
        --curve "velocities only=runs/.../pretrain_vel/probe_curve_start/probe_curve.json" \\
        --eval "supervised, velocities only=runs/.../eval_vel_regression_n256/results.json" [...]

``--curve NAME=PATH``: a ``probe_curve.json`` from ``scripts/probe_curve.py`` (the ``ssl_linear`` MSE against
the number of labels, mean ± std over cells); the first one's floor (the best constant for MSE) is drawn too.
``--eval NAME=PATH``: ``results.json`` files of ``ssl-pde-eval task=regression``, grouped by NAME and
training budget (``regression.supervised.max_steps``) into series of the supervised baseline's MSE against
their label counts. Both axes are logarithmic. Unreadable or
wrong-kind files and repeated names end with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from ssl_pde.core.cli import UserError, fail

FLOOR = "best constant (floor)"


def _named(items: list[str], flag: str) -> list[tuple[str, Path]]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"{flag} {item!r} must look like NAME=PATH")
        if not Path(path).is_file():
            raise UserError(f"{flag} {item!r}: no file {path}")
        out.append((name, Path(path)))
    return out


def _load(path: Path, flag: str, what: str) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{flag} {path}: cannot read it as JSON ({e})") from e
    if not isinstance(doc, dict):
        raise UserError(f"{flag} {path}: not {what}")
    return doc


def series(curves: list[tuple[str, Path]], evals: list[tuple[str, Path]]) -> dict[str, dict]:
    """Named series ``{name: {"n", "mean", "std": lists, "kind": "probe" | "supervised" | "floor"}}`` from the
    files; the floor (named :data:`FLOOR`) from the first curve. Supervised points are grouped by name and by
    their training budget (``regression.supervised.max_steps``), so one line never joins different budgets: a
    series is named ``"NAME, at most S steps"``. Raises UserError on an unreadable file, a file of the wrong
    kind, or a repeated name."""
    out: dict[str, dict] = {}
    names = [n for n, _ in curves] + list(dict.fromkeys(n for n, _ in evals))
    dup = sorted({n for n in names if names.count(n) > 1 or n == FLOOR})
    if dup:
        raise UserError(f"series name {dup[0]!r} is used twice (or is the floor's); give each series its own")
    for name, path in curves:
        doc = _load(path, "--curve", "a probe_curve.json")
        try:
            rows = doc["rows"]
            n, mse, floor = ([r[k] for r in rows] for k in ("n_labels", "ssl_linear_mse", "floor_mse"))
        except (KeyError, TypeError) as e:
            raise UserError(f"--curve {path}: not a probe_curve.json (missing {e})") from e
        out[name] = {"n": n, "mean": [m[0] for m in mse], "std": [m[1] for m in mse], "kind": "probe"}
        if FLOOR not in out:
            out[FLOOR] = {"n": n, "mean": [f[0] for f in floor], "std": None, "kind": "floor"}
    grouped: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    for name, path in evals:
        doc = _load(path, "--eval", "an ssl-pde-eval regression results.json")
        try:
            if doc["task"] != "regression":
                raise KeyError("task=regression")
            steps = doc["config"]["regression"]["supervised"]["max_steps"]
            sup = doc["result"]["summary"]["supervised"]["mse"]
            grouped[f"{name}, at most {steps} steps"].append((doc["n_labels"], *sup))
        except (KeyError, TypeError) as e:
            raise UserError(f"--eval {path}: not an ssl-pde-eval regression results.json (missing {e})") from e
    for name, pts in grouped.items():
        pts.sort()
        out[name] = {
            "n": [p[0] for p in pts],
            "mean": [p[1] for p in pts],
            "std": [p[2] for p in pts],
            "kind": "supervised",
        }
    return out


def plot(data: dict[str, dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, s in data.items():
        if s["kind"] == "floor":
            ax.plot(s["n"], s["mean"], "k--", lw=1, label=name)
        else:
            fmt = "s:" if s["kind"] == "supervised" else "o-"
            ax.errorbar(s["n"], s["mean"], yerr=s["std"], fmt=fmt, capsize=3, label=name)
    ax.set(xscale="log", yscale="log", xlabel="labelled trajectories", ylabel="test MSE", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curve", action="append", default=[], help="NAME=probe_curve.json (repeatable)")
    ap.add_argument("--eval", action="append", default=[], help="NAME=results.json of ssl-pde-eval (repeatable)")
    ap.add_argument("--title", default="buoyancy: linear probe of frozen encoders vs supervised")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args(argv)
    try:
        if not args.curve:
            raise UserError("give at least one --curve NAME=probe_curve.json")
        data = series(_named(args.curve, "--curve"), _named(args.eval, "--eval"))
    except UserError as e:  # one line, exit status 2
        fail(str(e))
    try:
        plot(data, args.out, args.title)
    except OSError as e:
        fail(f"--out {args.out}: cannot write it ({e})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
