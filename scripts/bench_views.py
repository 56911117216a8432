"""Benchmark: cost of building two Lie-symmetry views of a batch vs one ResNet18 forward+backward on it.

    python scripts/bench_views.py --device cpu --batch 32          # CPU table
    python scripts/bench_views.py --device cuda --batch 256         # the issue's GPU setting

Data: Burgers trajectories from the project's generator (140 frames x 256 points), crops of 128 x 256.
For each view mode (``coords``: 3 channels t', x', u'; ``resample``: 1 channel), it times, in the same
run and on the same device, (a) ``LieViews.two_views`` on the batch and (b) a ResNet18 forward+backward
on one view batch (bf16 autocast on CUDA, float32 on CPU), and reports the ratio (a)/(b). Writes
``docs/benchmarks/views_<tag>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

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
    fn()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None, help="crops per batch (default 256 on cuda, 32 on cpu)")
    ap.add_argument("--crop", type=int, nargs=2, default=(128, 256), metavar=("T", "X"))
    ap.add_argument("--repeat", type=int, default=5)
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
        rows.append(
            {
                "mode": mode,
                "channels": views.channels,
                "views_s": t_views,
                "encoder_fwd_bwd_s": t_enc,
                "ratio": t_views / t_enc,
            }
        )
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    head = f"batch {batch}, crops {args.crop[0]}x{args.crop[1]}, {dev} ({name}), torch {torch.__version__}"
    lines = [
        f"# View construction vs ResNet18 step: `{tag}`",
        "",
        head,
        "",
        "| mode | channels | two views (ms) | ResNet18 fwd+bwd, one view batch (ms) | views / encoder |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['channels']} | {1e3 * r['views_s']:.1f} | {1e3 * r['encoder_fwd_bwd_s']:.1f} "
            f"| {100 * r['ratio']:.1f} % |"
        )
    cmd = "python " + " ".join(sys.argv)
    lines += [
        "",
        f"Generators: {STRENGTHS} (Strang, 1 step). Median of {args.repeat} runs after a warm-up. "
        f"Produced by `{cmd}` on {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"views_{tag}.md").write_text(text)
    (args.out / f"views_{tag}.json").write_text(
        json.dumps(
            {
                "command": cmd,
                "device": str(dev),
                "device_name": name,
                "batch": batch,
                "crop": list(args.crop),
                "torch": torch.__version__,
                "strengths": STRENGTHS,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
