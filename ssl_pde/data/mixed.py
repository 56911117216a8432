"""Several 1D registry PDEs in one training set: the data side of mixed pretraining (``data=mixed``).

Every PDE's split is a :class:`~ssl_pde.data.datasets.TrajectoryDataset` of its own (``<dir>/<pde>/<split>``,
opened lazily per DataLoader worker as for one PDE); :class:`MixedDataset` puts them in one index space and tags
every batch element with the registry index of its PDE (``pde``), which the views
(:class:`~ssl_pde.augment.mixed.MixedViews`) dispatch on. :class:`MixedSampler` fills each training batch with a
seeded number of elements of each PDE whose expectation is the batch size times the PDE's mixing weight.

The PDEs of a mix must store trajectories of one shape (frames, channels, points): the batch is one tensor
before the views crop it. Grid spacings, time steps and domain lengths may differ (they do: Burgers on 2 pi,
KdV on about 128, KS on about 64, with the default generation settings 140 frames of 256 points each).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset, _already_collated
from ssl_pde.data.schema import SchemaError
from ssl_pde.pdes import PDES, pde_index

Tensor = torch.Tensor


class MixedDataset(Dataset):
    """The trajectories of several registry PDEs' splits, one index space: PDE ``names[k]``'s trajectory ``i`` is
    item ``offsets[k] + i``.

    A batch (:meth:`__getitems__`) is the batch of :class:`~ssl_pde.data.datasets.TrajectoryDataset` (``u``
    (B, T, C, X) float32, ``t`` (B, T) float64, ``x`` (B, X) float64, ``length`` (B,) float64, ``params``
    {name: (B,) float64}), its elements in the order asked for, with ``index`` (B,) int64 each element's index in
    its own PDE's split and ``pde`` (B,) int64 its PDE's registry index (:func:`~ssl_pde.pdes.pde_index`).

    Args:
        datasets: PDE name -> that PDE's split (shards written for the registry PDE of that name).

    Attributes:
        names: the PDEs, in the order given; codes: their registry indices.
        item_shape, n_spatial_dims, field_names, periodic_axes: as
            :class:`~ssl_pde.data.datasets.TrajectoryDataset`, shared by every PDE.
        pde, dataset_name: ``"mixed"`` and the PDEs joined by ``+``.
    """

    pde = "mixed"

    def __init__(self, datasets: Mapping[str, TrajectoryDataset]) -> None:
        if not datasets:
            raise UserError("a mixed dataset needs at least one PDE")
        self.datasets = dict(datasets)
        self.names = list(self.datasets)
        for name, ds in self.datasets.items():
            if name not in PDES or ds.pde != name or ds.dataset_name != name:
                raise UserError(
                    f"mixed data reads registry PDEs' shards; {name!r} holds {ds.dataset_name!r} (pde {ds.pde!r})"
                )
            if ds.n_spatial_dims != 1:
                raise UserError(f"mixed data reads 1D PDEs; {name} is {ds.n_spatial_dims}D")
        shapes = {name: tuple(ds.item_shape) for name, ds in self.datasets.items()}
        if len(set(shapes.values())) != 1:
            listed = ", ".join(f"{n} {s}" for n, s in shapes.items())
            raise SchemaError(
                f"the PDEs of a mix must store trajectories of one shape (T, C, X), got {listed}: generate them with "
                "the same solver.nt and solver.nx (their spacings and domain lengths may differ)"
            )
        first = self.datasets[self.names[0]]
        self.codes = [pde_index(n) for n in self.names]
        self.item_shape = first.item_shape
        self.n_spatial_dims = 1
        self.field_names = list(first.field_names)
        parts = self.datasets.values()
        self.periodic_axes = tuple(a for a in first.periodic_axes if all(a in d.periodic_axes for d in parts))
        self.dataset_name = "+".join(self.names)
        self.sizes = [len(self.datasets[n]) for n in self.names]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in :attr:`names`, index in that PDE's split) of each global index; two (n,) int64 arrays."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} trajectories")
        k = np.searchsorted(self.offsets, idx, side="right") - 1
        return k, idx - self.offsets[k]

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        """A whole batch at once, in the order of ``indices``: each PDE's elements read together
        (:meth:`TrajectoryDataset.__getitems__`), then concatenated and put back in order."""
        k, local = self.locate(indices)
        parts, where = [], []
        for j, name in enumerate(self.names):
            sel = np.flatnonzero(k == j)
            if sel.size:
                part = self.datasets[name].__getitems__(local[sel].tolist())
                part["pde"] = torch.full((sel.size,), self.codes[j], dtype=torch.int64)
                parts.append(part)
                where.append(sel)
        order = torch.from_numpy(np.argsort(np.concatenate(where), kind="stable"))

        def cat(key: str) -> Tensor:
            return torch.cat([p[key] for p in parts])[order]

        out = {key: cat(key) for key in ("u", "t", "x", "length", "index", "pde")}
        out["params"] = {n: torch.cat([p["params"][n] for p in parts])[order] for n in parts[0]["params"]}
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        (k,), (j,) = self.locate([i])
        item = self.datasets[self.names[int(k)]][int(j)]
        item["pde"] = torch.tensor(self.codes[int(k)], dtype=torch.int64)
        return item


def batch_counts(weights: Sequence[float], batch_size: int, u: float) -> list[int]:
    """Elements of each PDE in a batch of ``batch_size``: ``floor(B w_k)`` each, and the ``r`` slots left go to
    ``r`` distinct PDEs by systematic sampling of the fractional parts with offset ``u`` in [0, 1) (the points
    ``u, u + 1, ..., u + r - 1`` on the cumulative fractional parts). PDE k then gets ``ceil(B w_k)`` with
    probability ``frac(B w_k)`` over ``u ~ U(0, 1)``: its expected count is exactly ``B w_k``.

    Args:
        weights: normalised mixing weights (sum 1), one per PDE.
        batch_size: B.
        u: the offset, drawn by the caller from its seeded generator.
    """
    expected = np.asarray(weights, dtype=np.float64) * batch_size
    base = np.floor(expected + 1e-12)
    frac = np.clip(expected - base, 0.0, None)
    left = batch_size - int(base.sum())
    if left > 0:
        cum = np.concatenate([[0.0], np.cumsum(frac)])
        cum *= left / cum[-1]  # the fractional parts sum to `left` up to round-off
        base += np.ceil(cum[1:] - u - 1e-12) - np.ceil(cum[:-1] - u - 1e-12)
    return [int(c) for c in base]


class MixedSampler(Sampler[int]):
    """Training order of a :class:`MixedDataset`: ``n_batches`` batches of ``batch_size`` global indices, laid end
    to end (the DataLoader's batches of ``batch_size`` are exactly them), drawn from ``(seed, epoch)`` alone.

    Each batch holds :func:`batch_counts` elements of each PDE (expected ``batch_size * weight``), taken from
    that PDE's own shuffled order (a fresh permutation of its split each time the previous one is used up).
    ``n_batches = max(1, total // batch_size)`` over all PDEs' trajectories, so that an epoch reads about as many
    trajectories as the splits hold; with equal weights and equal split sizes each trajectory once per epoch.
    A PDE with a larger weight than its share of the data is read more than once per epoch, one with a
    smaller weight partly. Lightning calls :meth:`set_epoch` before each epoch (a resumed run sees the same order).

    Args:
        sizes: trajectories of each PDE (in :attr:`MixedDataset.names` order).
        weights: mixing weights, > 0 (normalised here).
        batch_size: elements per batch.
        seed: seed of the order.
    """

    def __init__(self, sizes: Sequence[int], weights: Sequence[float], batch_size: int, seed: int) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise UserError(f"one mixing weight per PDE: {len(weights)} weights for {len(sizes)} PDEs")
        w = np.asarray(weights, dtype=np.float64)
        if not (np.isfinite(w).all() and (w > 0).all()):
            raise UserError(f"mixing weights must be finite and > 0, got {list(weights)}")
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        self.sizes, self.weights = [int(s) for s in sizes], (w / w.sum()).tolist()
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), 0
        self.n_batches = max(1, sum(self.sizes) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches * self.batch_size

    def batches(self) -> list[list[int]]:
        """This epoch's batches of global indices (each grouped by PDE, in the PDEs' order)."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        streams: list[list[int]] = [[] for _ in self.sizes]
        out = []
        for _ in range(self.n_batches):
            u = float(torch.rand((), generator=gen, dtype=torch.float64))
            batch = []
            for k, c in enumerate(batch_counts(self.weights, self.batch_size, u)):
                while len(streams[k]) < c:
                    streams[k] += torch.randperm(self.sizes[k], generator=gen).tolist()
                batch += [int(self.offsets[k]) + i for i in streams[k][:c]]
                del streams[k][:c]
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[int]:
        return iter([i for b in self.batches() for i in b])


class MixedDataModule(L.LightningDataModule):
    """Train / valid loaders over several registry PDEs' shards, ``<dir>/<pde>/<split>`` for each PDE of ``mix``.

    As :class:`~ssl_pde.data.datasets.PDEDataModule`: workers only read (HDF5 opened lazily in each worker), every
    random choice comes from ``seed`` (the training order from ``(seed, epoch)`` by :class:`MixedSampler`, the
    validation subset and order from ``seed``), views are built on the device by the training module.

    Args:
        dir: root of the generated data.
        mix: PDE name -> mixing weight (>= 0; 0 leaves the PDE out: it is not read). The expected share of each
            training batch is the weight over the sum of weights.
        dataset: the mix's name (run names, logs); no directory of that name is read.
        batch_size: trajectories per batch, all PDEs together.
        num_workers, preload: as :class:`~ssl_pde.data.datasets.PDEDataModule`.
        param_names: parameters returned with each item; every PDE of the mix must store them (None entries, a
            probe switched off, are dropped).
        probe_size: validation trajectories per PDE (``None``: each PDE's whole valid split).
        train_split, val_split: split names.
        seed: seed of the training order and of the validation subset and order.
    """

    def __init__(
        self,
        dir: str,
        mix: Mapping[str, float],
        dataset: str = "mixed",
        batch_size: int = 64,
        num_workers: int = 0,
        preload: bool = False,
        param_names: Sequence[str | None] = (),
        probe_size: int | None = None,
        train_split: str = "train",
        val_split: str = "valid",
        seed: int = 0,
    ) -> None:
        super().__init__()
        weights = {str(k): float(v) for k, v in dict(mix).items()}
        bad = {k: v for k, v in weights.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            raise UserError(f"data.mix: weights must be finite and >= 0, got {bad}")
        unknown = sorted(k for k in weights if k not in PDES)
        if unknown:
            raise UserError(f"data.mix: unknown PDEs {unknown} (registry PDEs: {', '.join(PDES)})")
        self.mix = {k: v for k, v in weights.items() if v > 0}
        if not self.mix:
            raise UserError(f"data.mix: no PDE with a weight > 0 ({weights})")
        self.data_dir, self.dataset = Path(dir), dataset
        self.batch_size, self.num_workers, self.preload = batch_size, num_workers, preload
        self.param_names = [n for n in param_names if n]
        self.probe_size, self.train_split, self.val_split, self.seed = probe_size, train_split, val_split, seed
        self.train_set: MixedDataset | None = None
        self.val_set: Dataset | None = None

    @property
    def names(self) -> list[str]:
        """The PDEs read (weight > 0), in the order of ``mix``."""
        return list(self.mix)

    def _split(self, split: str) -> MixedDataset:
        return MixedDataset(
            {n: TrajectoryDataset(self.data_dir / n / split, self.param_names, self.preload) for n in self.mix}
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self.train_set = self._split(self.train_split)
        val = self._split(self.val_split)
        rng = np.random.default_rng(self.seed)
        chosen = []
        for k, n in enumerate(val.sizes):
            take = n if self.probe_size is None else min(n, self.probe_size)
            chosen.append(val.offsets[k] + np.sort(rng.choice(n, take, replace=False)))
        # one fixed interleaved order: the online probes fit on the first half and score the second
        self.val_set = Subset(val, rng.permutation(np.concatenate(chosen)).tolist())

    def _loader(self, ds: Dataset, sampler: Sampler[int] | None) -> DataLoader:
        return DataLoader(
            ds,
            collate_fn=_already_collated,  # __getitems__ returns a collated batch
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=sampler is not None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        ds = self.train_set
        return self._loader(ds, MixedSampler(ds.sizes, [self.mix[n] for n in ds.names], self.batch_size, self.seed))

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None
        return self._loader(self.val_set, None)
