"""Benchmark: cost of building two Lie-symmetry views of a batch vs one ResNet18 forward+backward on it.

    python scripts/bench_views.py --device cpu --batch 32          # CPU table
    python scripts/bench_views.py --device cuda --batch 256         # the issue's GPU setting

Data: Burgers trajectories from the project's generator (140 frames x 256 points), crops of 128 x 256.
For each view mode (``coords``: 3 channels t', x', u'; ``resample``: 1 channel), it times, in the same
run and on the same device, (a) ``LieViews.two_views`` on the batch and (b) a ResNet18 forward+backward
on one view batch (bf16 autocast on CUDA, float32 on CPU), and reports the ratio (a)/(b). It also measures the
machine ceilings in the same run (:func:`benchlib.ceilings`) and states the encoder step's achieved FLOP/s (torch's
flop count of the step) as a fraction of the matmul ceiling of its dtype. Writes
``docs/benchmarks/views_<tag>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, also when this file is imported by path

import numpy as np
import torch
from benchlib import ceilings, ceilings_line, count_flops, fraction, machine_info, timed_best, utc_now, write_report

from ssl_pde.augment.views import LieViews
from ssl_pde.models.encoders import ResNet18

STRENGTHS = {"space_translation": 3.14, "galilean_boost": 0.4, "scaling": 0.04}  # e^{2 eps} 127 < 139 frames


def make_data(n: int, batch: int, device: torch.device):
    """Generate ``n`` Burgers trajectories and tile them to ``batch``: u (B, T, X), t, x, length."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from ssl_pde import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "generate", overrides=["pde=burgers", "solver.solver_nx=512", "solver.dt_max=2e-3", "solver.nu_min=2e-2"]
        )
    b = instantiate(cfg.solver).generate(np.arange(n))
    reps = -(-batch // n)

    def tile(a):
        return torch.from_numpy(np.concatenate([a] * reps)[:batch]).to(device)

    return tile(b.u[:, :, 0]), tile(b.t), tile(b.x), tile(b.params["domain_length"])


def timeit(fn, device: torch.device, repeat: int) -> float:
    """Median seconds of ``repeat`` synchronised runs of ``fn`` after one warm-up run."""
    _, _, times = timed_best(fn, device, repeat, warmup=1)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None, help="crops per batch (default 256 on cuda, 32 on cpu)")
    ap.add_argument("--crop", type=int, nargs=2, default=(128, 256), metavar=("T", "X"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ceiling-seconds", type=float, default=3.0, help="budget of the machine ceilings (0: skip)")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    args = ap.parse_args(argv)
    dev = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    batch = args.batch or (256 if dev.type == "cuda" else 32)
    tag = args.tag or dev.type
    ceil = ceilings(dev, seconds=args.ceiling_seconds)
    dtype = "bfloat16" if dev.type == "cuda" else "float32"  # the encoder step's compute dtype
    u, t, x, length = make_data(min(batch, 64), batch, dev)
    rows = []
    for mode in ("coords", "resample"):
        views = LieViews("burgers", STRENGTHS, mode=mode, crop_t=args.crop[0], crop_x=args.crop[1])
        gen = torch.Generator(device=dev).manual_seed(0)
        t_views = timeit(lambda views=views, gen=gen: views.two_views(u, t, x, length, gen), dev, args.repeat)
        v1, _ = views.two_views(u, t, x, length, gen)
        enc = ResNet18(views.channels).to(dev)
        if dev.type == "cuda":
            enc = enc.to(memory_format=torch.channels_last)
            v1 = v1.contiguous(memory_format=torch.channels_last)

        def step(enc=enc, v1=v1):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                z = enc(v1)
            z.float().square().mean().backward()

        t_enc = timeit(step, dev, args.repeat)
        flops = count_flops(step)
        rows.append(
            {
                "mode": mode,
                "channels": views.channels,
                "views_s": t_views,
                "encoder_fwd_bwd_s": t_enc,
                "ratio": t_views / t_enc,
                "encoder_flops": flops,
                "encoder_flops_per_s": flops / t_enc,
                "encoder_fraction_of_matmul_ceiling": fraction(
                    flops / t_enc, ceil.get("matmul_flops_per_s", {}).get(dtype)
                ),
            }
        )
    machine = machine_info(dev)
    name = machine["device_name"]
    head = f"batch {batch}, crops {args.crop[0]}x{args.crop[1]}, {dev} ({name}), torch {torch.__version__}"
    lines = [
        f"# View construction vs ResNet18 step: `{tag}`",
        "",
        head,
        "",
        "| mode | channels | two views (ms) | ResNet18 fwd+bwd, one view batch (ms) | views / encoder "
        f"| encoder GFLOP/s (of {dtype} matmul ceiling) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        frac = r["encoder_fraction_of_matmul_ceiling"]
        lines.append(
            f"| {r['mode']} | {r['channels']} | {1e3 * r['views_s']:.1f} | {1e3 * r['encoder_fwd_bwd_s']:.1f} "
            f"| {100 * r['ratio']:.1f} % | {r['encoder_flops_per_s'] / 1e9:.4g}"
            + (f" ({100 * frac:.1f} %) |" if frac is not None else " |")
        )
    cmd = "python " + " ".join(sys.argv)
    lines += [
        "",
        f"Generators: {STRENGTHS} (Strang, 1 step). Median of {args.repeat} runs after a warm-up. "
        f"Produced by `{cmd}` on {utc_now()}.",
        "",
        "Encoder FLOP/s: torch's flop count of one fwd+bwd (`torch.utils.flop_counter`: convolutions and matmuls) "
        "over its median time.",
        "",
    ]
    if ceil:
        lines += [ceilings_line(ceil), ""]
    text = "\n".join(lines)
    print(text)
    data = {
        "command": cmd,
        "device": str(dev),
        "device_name": name,
        "batch": batch,
        "crop": list(args.crop),
        "torch": torch.__version__,
        "strengths": STRENGTHS,
        "rows": rows,
        "machine": machine,
        "ceilings": ceil,
    }
    write_report(args.out, "views", tag, data, text)


if __name__ == "__main__":
    main()
