"""Benchmark: samples/s of the full pretraining pipeline vs the encoder step alone, and peak memory.

    python scripts/bench_train.py --device cpu                 # small CPU setting (batch 16, crops 64x128)
    python scripts/bench_train.py --device cuda                # the issue's setting (batch 256, crops 128x256)
    python scripts/bench_train.py --device cpu --experiment burgers_demo --tag cpu_demo   # the demo's encoder step

Full pipeline: HDF5 shards (generated here by the project's generator) -> PDEDataModule (preloaded) ->
transfer -> two Lie-symmetry views on the device -> encoder + projector + VICReg -> backward -> AdamW,
run by the Lightning Trainer exactly as ``ssl-pde-pretrain`` does; timed between consecutive batch starts.
Baseline: the same model step (forward of both views, loss, backward, optimizer) on views already on
the device. The machine ceilings (:func:`benchlib.ceilings`) are measured in the same run; the encoder step's
achieved FLOP/s (torch's flop count of one step) is stated as a fraction of the matmul ceiling of its dtype.
The encoder step is also timed per precision and memory layout (``--variants``: float32 / bfloat16 autocast,
contiguous / channels-last; the same initial weights and views), each as a ratio to float32 contiguous (the CPU
step before channels-last became the default) and as fractions of the float32 and bfloat16 matmul peaks.
Writes ``docs/benchmarks/train_<tag>.{json,md}``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, also when this file is imported by path

import lightning as L
import numpy as np
import torch
from benchlib import (
    ceilings,
    ceilings_line,
    count_flops,
    fmt,
    fraction,
    machine_info,
    ratio,
    sync,
    timed_best,
    utc_now,
    write_report,
)

import ssl_pde.config  # noqa: F401
from ssl_pde.core.hardware import cpu_has_native_bf16

#: Encoder-step variants: (channels-last layout, bf16 autocast, description); a ``-compiled`` suffix (not in the
#: default list: minutes of compilation on a CPU) runs the encoder through ``torch.compile`` (``compile=true``).
STEP_VARIANTS: dict[str, tuple[bool, bool, str]] = {
    "fp32": (False, False, "float32, contiguous layout (the CPU step of commit 191845d)"),
    "fp32-cl": (True, False, "float32, channels-last"),
    "bf16": (False, True, "bfloat16 autocast, contiguous"),
    "bf16-cl": (True, True, "bfloat16 autocast, channels-last (the CUDA step)"),
    "fp32-cl-compiled": (True, False, "float32, channels-last, torch.compile of the encoder (`compile=true`)"),
    "bf16-cl-compiled": (True, True, "bfloat16 autocast, channels-last, torch.compile of the encoder"),
}


class StepTimer(L.Callback):
    """Wall-clock time between consecutive training-batch starts (includes loading, transfer, views)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        sync(pl_module.device)
        self.starts.append(time.perf_counter())


def main(argv: list[str] | None = None) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from data_gen.cli.generate import generate
    from ssl_pde import CONFIG_DIR

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--crop", type=int, nargs=2, default=None, metavar=("T", "X"))
    ap.add_argument("--steps", type=int, default=None, help="timed steps (after warm-up)")
    ap.add_argument("--n-traj", type=int, default=None, help="trajectories generated for the benchmark")
    ap.add_argument("--mode", default="coords", choices=["coords", "resample"])
    ap.add_argument("--tag", default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks"))
    ap.add_argument("--ceiling-seconds", type=float, default=3.0, help="budget of the machine ceilings (0: skip)")
    ap.add_argument(
        "--experiment",
        default=None,
        help="compose this pretraining experiment (e.g. burgers_demo: the demo's encoder, batch and crops; "
        "--batch / --crop still override)",
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["fp32", "fp32-cl", "bf16", "bf16-cl"],
        choices=list(STEP_VARIANTS),
        help="encoder-step variants timed on the same views: "
        + "; ".join(f"{k}: {v[2]}" for k, v in STEP_VARIANTS.items()),
    )
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    dev = torch.device("cuda" if cuda else "cpu")
    exp = [f"experiment={args.experiment}"] if args.experiment else []
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        exp_cfg = compose("pretrain", overrides=exp) if exp else None
    batch = args.batch or (exp_cfg.data.batch_size if exp_cfg else (256 if cuda else 16))
    crop = args.crop or (
        (exp_cfg.augment.crop_t, exp_cfg.augment.crop_x) if exp_cfg else ((128, 256) if cuda else (64, 128))
    )
    steps = args.steps or (50 if cuda else 8)
    n_traj = args.n_traj or max(2 * batch, 64)
    tag = args.tag or dev.type
    ceil = ceilings(dev, seconds=args.ceiling_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    overrides_gen = [
        "pde=burgers",
        "solver.solver_nx=512",
        "solver.dt_max=2e-3",
        "solver.nu_min=2e-2",
        f"out_dir={tmp}",
        "progress=false",
        f"device={dev.type}",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for split, n in (("train", n_traj), ("valid", 16)):
            generate(compose("generate", overrides=[*overrides_gen, f"split={split}", f"num_samples={n}"]))
        cfg = compose(
            "pretrain",
            overrides=[
                *exp,
                f"data.dir={tmp}",
                f"data.batch_size={batch}",
                "data.preload=true",
                "data.num_workers=0",
                f"augment.crop_t={crop[0]}",
                f"augment.crop_x={crop[1]}",
                f"augment.mode={args.mode}",
                "augment.strengths.scaling=0.04",
                f"trainer={'gpu' if cuda else 'cpu'}",
                f"run_dir={tmp / 'run'}",
            ],
        )
    datamodule = instantiate(cfg.data)
    views = instantiate(cfg.augment)
    model = instantiate(cfg.method, encoder=instantiate(cfg.encoder), views=views, optimizer=instantiate(cfg.optim))
    timer = StepTimer()
    warm = 3
    trainer = L.Trainer(
        accelerator="gpu" if cuda else "cpu",
        devices=1,
        precision=cfg.trainer.precision,
        max_steps=warm + steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[timer],
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, datamodule=datamodule)
    gaps = np.diff(timer.starts[warm:])
    pipeline = batch / float(np.median(gaps))
    peak_pipeline = torch.cuda.max_memory_allocated() / 2**30 if cuda else None

    # Encoder step alone, on views already on the device: each variant from the same initial weights and views.
    model = model.to(dev).train()
    init_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ds = datamodule.train_set
    b = ds.__getitems__(list(range(batch)))
    u = b["u"][:, :, 0].to(dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    views_pair = views.two_views(u, b["t"].to(dev), b["x"].to(dev), b["length"].to(dev), gen)
    from ssl_pde.losses.vicreg import vicreg_loss

    variants: dict[str, dict] = {}
    for name in args.variants:
        cl, bf16, _ = STEP_VARIANTS[name]
        layout = torch.channels_last if cl else torch.contiguous_format
        model.load_state_dict(init_state)
        model.encoder.to(memory_format=layout)
        encoder = torch.compile(model.encoder) if name.endswith("-compiled") else model.encoder
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        v1, v2 = (v.contiguous(memory_format=layout) for v in views_pair)

        def step() -> None:
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):  # noqa: B023
                z1, z2 = model.projector(encoder(v1)), model.projector(encoder(v2))  # noqa: B023
            loss = vicreg_loss(z1.float(), z2.float())["loss"]
            opt.zero_grad(set_to_none=True)  # noqa: B023
            loss.backward()
            opt.step()  # noqa: B023

        t_first = time.perf_counter()
        for _ in range(warm):
            step()
        first = time.perf_counter() - t_first
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        _, _, times = timed_best(step, dev, steps)
        variants[name] = {
            "samples_per_s": batch / float(np.median(times)),
            "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "warmup_seconds": first,
        }
        print(f"    encoder step {name}: {variants[name]['samples_per_s']:.1f} samples/s", flush=True)
    model.encoder.to(memory_format=torch.contiguous_format)
    # Model flops per sample (torch's count: convolutions and matmuls of both views, forward and backward).
    v1, v2 = views_pair

    def count_step() -> None:
        z1, z2 = model.projector(model.encoder(v1)), model.projector(model.encoder(v2))
        vicreg_loss(z1, z2)["loss"].backward()

    flops_per_sample = count_flops(count_step) / batch
    model.zero_grad(set_to_none=True)
    peaks = ceil.get("matmul_flops_per_s", {})
    base = variants.get("fp32", {}).get("samples_per_s")
    for v in variants.values():
        v["ratio_vs_fp32"] = ratio(v["samples_per_s"], base)
        v["flops_per_s"] = v["samples_per_s"] * flops_per_sample
        v["fraction_of_fp32_peak"] = fraction(v["flops_per_s"], peaks.get("float32"))
        v["fraction_of_bf16_peak"] = fraction(v["flops_per_s"], peaks.get("bfloat16"))
    bf16_default = cuda or str(cfg.trainer.precision).startswith("bf16")  # the trainer's own precision
    default_variant = "bf16-cl" if bf16_default else "fp32-cl"  # what trainer=gpu / trainer=cpu run
    if default_variant not in variants:
        default_variant = next(iter(variants))
    alone = variants[default_variant]["samples_per_s"]
    peak_alone = variants[default_variant]["peak_gpu_gib"]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    dtype = "bfloat16" if STEP_VARIANTS[default_variant][1] else "float32"  # that step's compute dtype
    peak = peaks.get(dtype)
    machine = machine_info(dev)
    name = machine["device_name"]
    cmd = "python " + " ".join(sys.argv)
    res = {
        "command": cmd,
        "device": str(dev),
        "device_name": name,
        "torch": torch.__version__,
        "batch": batch,
        "crop": list(crop),
        "mode": args.mode,
        "precision": str(cfg.trainer.precision),
        "steps": steps,
        "pipeline_samples_per_s": pipeline,
        "encoder_step_samples_per_s": alone,
        "ratio": pipeline / alone,
        "peak_gpu_gib_pipeline": peak_pipeline,
        "peak_gpu_gib_encoder": peak_alone,
        "peak_rss_gib": rss,
        "date_utc": utc_now(),
        "model_flops_per_sample": flops_per_sample,
        "pipeline_flops_per_s": pipeline * flops_per_sample,
        "encoder_step_flops_per_s": alone * flops_per_sample,
        "ceiling_dtype": dtype,
        "pipeline_fraction_of_matmul_ceiling": fraction(pipeline * flops_per_sample, peak),
        "encoder_step_fraction_of_matmul_ceiling": fraction(alone * flops_per_sample, peak),
        "encoder_step_default_variant": default_variant,
        "encoder_step_variants": variants,
        "machine": machine,
        "ceilings": ceil,
    }

    def pct(v: float | None) -> str:
        return f"{100 * v:.1f} %" if v is not None else "-"

    def fmt_mem(v):
        return f"{v:.2f} GiB" if v is not None else "n/a"

    def fmt_flops(samples_per_s: float) -> str:
        frac = fraction(samples_per_s * flops_per_sample, peak)
        return f"{samples_per_s * flops_per_sample / 1e9:.4g}" + (f" ({100 * frac:.1f} %)" if frac is not None else "")

    text = "\n".join(
        [
            f"# Training throughput: `{tag}`",
            "",
            f"{name}, torch {torch.__version__}, precision {cfg.trainer.precision}, batch {batch}, crops "
            f"{crop[0]}x{crop[1]} ({args.mode} views), ResNet18 + 512-512-512 projector, median of {steps} steps.",
            "",
            f"| measurement | samples/s | peak GPU memory | model GFLOP/s (of {dtype} matmul ceiling) |",
            "|---|---|---|---|",
            f"| full pipeline (loading + views + step, Lightning) | {pipeline:.1f} | {fmt_mem(peak_pipeline)} "
            f"| {fmt_flops(pipeline)} |",
            f"| encoder step alone (views on device, `{default_variant}`) | {alone:.1f} | {fmt_mem(peak_alone)} "
            f"| {fmt_flops(alone)} |",
            f"| ratio | {100 * pipeline / alone:.1f} % | | |",
            "",
            "## Encoder step by precision and memory layout (same weights, same views)",
            "",
            "| variant | samples/s | vs fp32 contiguous | model GFLOP/s | of fp32 matmul peak | of bf16 matmul peak |",
            "|---|---|---|---|---|---|",
            *[
                f"| `{k}`: {STEP_VARIANTS[k][2]} | {v['samples_per_s']:.1f} | {fmt(v['ratio_vs_fp32'], '.2f')}x | "
                f"{v['flops_per_s'] / 1e9:.4g} | {pct(v['fraction_of_fp32_peak'])} | "
                f"{pct(v['fraction_of_bf16_peak'])} |"
                for k, v in variants.items()
            ],
            "",
            "The fractions divide the model's FLOP/s (torch's count, the same for every variant) by the large-matmul "
            "peak of each dtype measured in this run: a bf16 fraction above 1 means the machine's bf16 matmul is "
            "slower than what the float32 step achieves (bf16 arithmetic emulated, as on CPUs without "
            "`avx512_bf16` / AMX)."
            + (
                " This CPU has native bfloat16 (`trainer.precision=bf16-mixed` is the faster step here)."
                if not cuda and cpu_has_native_bf16()
                else ""
            ),
            "",
            f"Peak host memory (max RSS): {rss:.2f} GiB. Produced by `{cmd}` on {res['date_utc']}.",
            "",
            f"Model FLOP/s: torch's flop count of one encoder step ({flops_per_sample / 1e9:.3g} GFLOP per sample: "
            "`torch.utils.flop_counter`, convolutions and matmuls of both views, forward and backward) times "
            "samples/s.",
            "",
            *([ceilings_line(ceil), ""] if ceil else []),
        ]
    )
    print(text)
    write_report(args.out, "train", tag, res, text)


if __name__ == "__main__":
    main()
