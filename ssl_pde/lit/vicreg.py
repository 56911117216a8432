"""Joint-embedding pretraining module: views on the device, encoder -> projector -> objective, diagnostics.

:class:`JointEmbeddingModule` takes its objective (:mod:`ssl_pde.losses.objectives`: VICReg, Barlow Twins, SimCLR)
as an argument; :class:`VICRegModule` is it with the VICReg objective, configured by its three coefficients
(``configs/method/vicreg.yaml``, unchanged since before the objective was a choice).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

from ssl_pde.augment.base import SymmetryViews
from ssl_pde.augment.corrupt import Corruption, corrupt
from ssl_pde.core.errors import DataError, DivergenceError
from ssl_pde.losses.objectives import Objective, VICReg
from ssl_pde.metrics import rankme, ridge_classify, ridge_probe

Tensor = torch.Tensor
#: Validation trajectories the online ridge probe needs; with fewer (or no ``probe_param``) only RankMe is logged.
MIN_PROBE_SAMPLES = 8


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """LR multiplier: linear warmup over ``warmup_steps``, then cosine decay to ``min_ratio``."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        frac = min(1.0, (step - warmup_steps) / max(total_steps - warmup_steps, 1))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac))

    return f


class JointEmbeddingModule(L.LightningModule):
    """Joint-embedding pretraining on symmetry views: the same encoder and projector embed two views of each
    sample, and ``objective`` scores the two embedding batches.

    Args:
        encoder: (B, C, T, X) -> (B, D) representation.
        projector: (B, D) -> (B, E) embedding.
        views: builds two views of a batch on its device (:class:`~ssl_pde.augment.views.LieViews` in 1D,
            :class:`~ssl_pde.augment.ns_views.NSViews` in 2D, :class:`~ssl_pde.augment.generic_views.GenericViews`
            for an external dataset, :class:`~ssl_pde.augment.mixed.MixedViews` for several 1D PDEs); its
            ``inputs(batch)`` picks its arguments.
        optimizer: partial optimizer taking the parameter groups.
        objective: ``(z1, z2) -> dict`` of () terms, ``loss`` the total (:mod:`ssl_pde.losses.objectives`); it
            gathers the embeddings across ranks itself. Every term is logged as ``train/<term>``; its ``name``
            appears in the error of a non-finite loss.
        weight_decay: applied to weights only (not biases or normalisation parameters).
        warmup_frac: fraction of the steps with linear LR warmup before cosine decay.
        probe_param: stored parameter regressed by the online ridge probe each validation epoch; None: no probe
            (an external dataset that stores no parameter), only RankMe is logged. Batches of several PDEs
            (``data=mixed``, a ``pde`` entry per element) also get a probe of the PDE's identity
            (``val/pde_accuracy`` by a ridge classifier, beside ``val/pde_accuracy_floor``, the majority class).
        probe_log: probe in log space (viscosity).
        seed: base seed of the views (crop positions, group parameters): step and rank are mixed in.
        fixed_views: reuse the same crops and group elements at every step (``debug=overfit`` only).
        channels_last: run the encoder's convolutions in channels-last memory layout (encoder and views) on
            every device: on CUDA the layout of tensor cores, on a CPU 1.2-1.3x the contiguous layout's samples/s
            for the same arithmetic (``docs/benchmarks/train_cpu_nobf16.md``, ``train_cpu_amx.md``).
        corrupt: messy observations as an augmentation (levels ``noise``, ``drop_x``, ``drop_t`` of
            :class:`~ssl_pde.augment.corrupt.Corruption`; None or all 0: off). Each view is built from its own
            corrupted copy of the batch (independent noise, sensor layout and missing frames), drawn from the views'
            generator; the validation inputs stay clean.
    """

    def __init__(
        self,
        encoder: nn.Module,
        projector: nn.Module,
        views: SymmetryViews,
        optimizer: Callable[..., torch.optim.Optimizer],
        objective: Objective,
        weight_decay: float = 1e-6,
        warmup_frac: float = 0.05,
        probe_param: str | None = None,
        probe_log: bool = False,
        seed: int = 0,
        fixed_views: bool = False,
        corrupt: Mapping[str, float] | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        # the objective and the corruption (a config node) stay out of the checkpoint's hyperparameters (only plain
        # values: checkpoints load with weights_only=True); the run's config.yaml and W&B config record them
        self.save_hyperparameters(ignore=["encoder", "projector", "views", "optimizer", "objective", "corrupt"])
        self.corruption = Corruption.from_mapping(corrupt, "method.corrupt")
        self.encoder, self.projector, self.views = encoder, projector, views
        self.objective = objective
        self.optimizer_factory = optimizer
        self._val: list[tuple[Tensor, Tensor]] = []
        self._t_last: float | None = None

    # ------------------------------------------------------------------ data on the device
    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        args = self.views.inputs(batch)  # (u, t, x, length) in 1D (u the first field), (u, t, x, y) in 2D
        u = args[0]
        if not torch.isfinite(u).all():
            bad = batch["index"][~torch.isfinite(u).flatten(1).all(1)].tolist()
            raise DataError(f"non-finite values in the input data (trajectory indices {bad[:8]})")
        if self.trainer is not None and self.trainer.training:
            gen = torch.Generator(device=u.device)
            step = 0 if self.hparams.fixed_views else self.global_step
            gen.manual_seed(int(self.hparams.seed) * 1_000_003 + step * 7919 + self.global_rank)
            batch["views"] = tuple(self.laid_out(v) for v in self._two_views(batch, args, gen))
            if self.global_step == 0 and self.global_rank == 0:
                self._log_view_figure(u, batch["views"])
        else:
            batch["view"] = self.laid_out(self.views.eval_view(*args))
        return batch

    def laid_out(self, v: Tensor) -> Tensor:
        """A view (B, C, H, W) in the encoder's memory layout: channels-last when ``channels_last`` (other ranks
        stay contiguous)."""
        cl = self.hparams.get("channels_last", True) and v.dim() == 4
        return v.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)

    def corrupted_inputs(self, batch: dict[str, Any], generator: torch.Generator) -> tuple[Any, ...]:
        """The views' positional arguments from a copy of ``batch`` whose ``u`` (B, T, C, X[, Y]) is corrupted
        (:func:`~ssl_pde.augment.corrupt.corrupt`, drawn from ``generator``): one call per view."""
        u = corrupt(
            batch["u"],
            batch["t"],
            batch["x"],
            self.corruption,
            generator,
            length=batch.get("length"),
            periodic="x" in (getattr(self.views, "periodic", None) or ("x",)),  # registry 1D PDEs: periodic
        )
        return self.views.inputs({**batch, "u": u})

    def _two_views(self, batch: dict[str, Any], args: tuple[Any, ...], gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """The two views of a training batch; with a corruption, each from its own corrupted copy of the batch
        (views that share one crop, ``same_window``, still do)."""
        if self.corruption.is_clean:
            return self.views.two_views(*args, gen)
        shared = {"starts": self.views.crop_starts(args[0], gen)} if getattr(self.views, "same_window", False) else {}
        v1 = self.views.view(*self.corrupted_inputs(batch, gen), gen, **shared)
        v2 = self.views.view(*self.corrupted_inputs(batch, gen), gen, **shared)
        return v1, v2

    def on_fit_start(self) -> None:
        if self.hparams.get("channels_last", True):  # channels-last convolutions (the views are made so too)
            self.encoder.to(memory_format=torch.channels_last)

    def _log_view_figure(self, u: Tensor, views: tuple[Tensor, Tensor], n: int = 4) -> None:
        """Send a figure of the first trajectories' two views to every logger that takes images (W&B)."""
        loggers = [lg for lg in (self.loggers or []) if hasattr(lg, "log_image")]
        if not loggers:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        n = min(n, u.shape[0])
        fig, axes = plt.subplots(n, 3, figsize=(9, 2.2 * n), squeeze=False, constrained_layout=True)
        for i in range(n):
            # 1D: (T, X), of the first field when u has a channel axis; 2D: the last frame of the first field
            frame = u[i] if u.dim() == 3 else u[i, :, 0] if u.dim() == 4 else u[i, -1, 0].T
            axes[i, 0].imshow(frame.float().cpu(), origin="lower", aspect="auto", cmap="RdBu_r")
            for j, v in enumerate(views):
                img = v[i, -1] if u.dim() <= 4 else v[i, -1].T  # the last channel
                axes[i, j + 1].imshow(img.float().cpu(), origin="lower", aspect="auto", cmap="RdBu_r")
        for j, title in enumerate(("trajectory", "view 1 (field)", "view 2 (field)")):
            axes[0, j].set_title(title)
        for lg in loggers:
            lg.log_image(key="views", images=[fig], step=0)
        plt.close(fig)

    # ------------------------------------------------------------------ training
    def forward(self, x: Tensor) -> Tensor:
        """Representation of views x: (B, C, T, X) -> (B, D)."""
        return self.encoder(x)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        v1, v2 = batch["views"]
        z1, z2 = self.projector(self.encoder(v1)), self.projector(self.encoder(v2))
        terms = self.objective(z1, z2)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            name = getattr(self.objective, "name", type(self.objective).__name__)
            detail = ", ".join(f"{k} {float(v.detach()):.3g}" for k, v in terms.items() if k != "loss")
            raise DivergenceError(
                f"non-finite {name} loss at step {self.global_step} ({detail}); lower the learning rate or check the "
                "data"
            )
        bsz = v1.shape[0]
        std = z1.detach().float().std(0)
        now = time.perf_counter()
        logs = {f"train/{k}": v.detach() for k, v in terms.items()}
        logs.update({"train/emb_std_mean": std.mean(), "train/emb_std_min": std.min()})
        if self._t_last is not None:
            logs["train/samples_per_s"] = torch.tensor(bsz * self.trainer.world_size / max(now - self._t_last, 1e-9))
        self._t_last = now
        self.log_dict(logs, on_step=True, on_epoch=False, prog_bar=False, batch_size=bsz)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=bsz)
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, logger=False, batch_size=bsz)
        return loss

    # ------------------------------------------------------------------ validation: rank and online probe
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        y = self.encoder(batch["view"]).float()
        p = self.hparams.probe_param
        label = batch["params"][p] if p else torch.zeros(y.shape[0], device=y.device)
        # mixed batches (ssl_pde.data.mixed) carry each element's PDE: the class of the identity probe
        pde = batch.get("pde", torch.full((y.shape[0],), -1, dtype=torch.int64, device=y.device))
        self._val.append((y.detach(), label.detach(), pde))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        y = torch.cat([a for a, _, _ in self._val])
        lab = torch.cat([b for _, b, _ in self._val])
        pde = torch.cat([c for _, _, c in self._val])
        self._val.clear()
        if self.trainer.world_size > 1:
            y, lab, pde = (self.all_gather(v).flatten(0, 1) for v in (y, lab, pde))
        logs = {"val/rankme": rankme(y).float()}
        if len(torch.unique(pde)) > 1 and y.shape[0] >= MIN_PROBE_SAMPLES:
            r = ridge_classify(y.cpu(), pde.cpu())
            logs.update(
                {
                    "val/pde_accuracy": torch.tensor(r["accuracy"]),
                    "val/pde_accuracy_floor": torch.tensor(r["floor_accuracy"]),
                }
            )
        if self.hparams.probe_param and y.shape[0] >= MIN_PROBE_SAMPLES:
            r = ridge_probe(y.cpu(), lab.cpu(), log_target=self.hparams.probe_log)
            logs.update(
                {
                    "val/probe_nmse": torch.tensor(r["nmse"]),
                    "val/probe_rel_l1": torch.tensor(r["rel_l1"]),
                    "val/probe_floor_nmse": torch.tensor(r["floor_nmse"]),
                }
            )
        self.log_dict(logs, sync_dist=False, rank_zero_only=True)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        decay, no_decay = [], []
        for p in self.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)  # biases and norm parameters: no decay
        opt = self.optimizer_factory(
            [{"params": decay, "weight_decay": self.hparams.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, int(self.hparams.warmup_frac * total)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class VICRegModule(JointEmbeddingModule):
    """:class:`JointEmbeddingModule` with the VICReg objective (``configs/method/vicreg.yaml``).

    Args:
        encoder, projector, views, optimizer: as :class:`JointEmbeddingModule`.
        weight_decay, warmup_frac, probe_param, probe_log, seed, fixed_views, corrupt, channels_last: as
            :class:`JointEmbeddingModule`.
        sim_coeff, std_coeff, cov_coeff: VICReg weights (:class:`~ssl_pde.losses.objectives.VICReg`).
    """

    def __init__(
        self,
        encoder: nn.Module,
        projector: nn.Module,
        views: SymmetryViews,
        optimizer: Callable[..., torch.optim.Optimizer],
        weight_decay: float = 1e-6,
        sim_coeff: float = 25.0,
        std_coeff: float = 25.0,
        cov_coeff: float = 1.0,
        warmup_frac: float = 0.05,
        probe_param: str | None = None,
        probe_log: bool = False,
        seed: int = 0,
        fixed_views: bool = False,
        corrupt: Mapping[str, float] | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__(
            encoder,
            projector,
            views,
            optimizer,
            VICReg(sim_coeff, std_coeff, cov_coeff),
            weight_decay=weight_decay,
            warmup_frac=warmup_frac,
            probe_param=probe_param,
            probe_log=probe_log,
            seed=seed,
            fixed_views=fixed_views,
            corrupt=corrupt,
            channels_last=channels_last,
        )
