"""Datasets over HDF5 shards (schema v1) and the Lightning data module.

HDF5 files are opened lazily, in the process that reads them (each DataLoader worker opens its own
handles on first access; handles are never pickled), so nothing is opened before the fork. Small 1D
sets can be preloaded into memory (``preload=True``), and moved to the GPU by the training module.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset, default_collate

from ssl_pde.core.errors import DataError, UserError
from ssl_pde.data.schema import EXTERNAL, SchemaError, list_shards, periodic_axes, validate_shard

Tensor = torch.Tensor


class TrajectoryDataset(Dataset):
    """All trajectories of one split (a directory of shards).

    Item ``i``: dict with ``u`` (T, C, X) float32, ``t`` (T,) float64, ``x`` (X,) float64,
    ``length`` () float64 (domain length), ``index`` () int64, and ``params`` {name: () float64} for the
    scalar parameters in ``param_names``. 2D shards (``u`` (N, T, C, X, Y)) give ``u`` (T, C, X, Y), ``y``
    (Y,) float64 too, and ``length`` / ``length_y`` () float64: the box size along x / y, derived from the
    uniform grids as ``n * spacing`` (2D shards store no ``domain_length``; their grids are cell centres).
    1D shards without ``params/domain_length`` (external datasets) get ``length`` the same way.

    Every shard of a split must have the same frame count, channels and grid size (trajectories are batched).

    Args:
        directory: ``<data_dir>/<dataset>/<split>``.
        param_names: scalar parameters to return (e.g. ``["nu"]``).
        preload: read everything into memory at construction.

    Attributes:
        item_shape: one trajectory's (T, C, X[, Y]).
        n_spatial_dims: 1 or 2.
        pde: the shards' ``pde`` attribute (a registry PDE, or ``external``).
        dataset_name: the shards' dataset (the registry PDE, or the external dataset's name).
        field_names: the channels of ``u`` (C names).
        periodic_axes: the spatial axes along which every shard is periodic
            (:func:`~ssl_pde.data.schema.periodic_axes`).
    """

    def __init__(self, directory: str | Path, param_names: list[str] | tuple[str, ...] = (), preload: bool = False):
        self.paths = list_shards(directory)
        if not self.paths:
            raise SchemaError(f"no shards under {str(directory)!r} (generate them with ssl-pde-generate)")
        sizes, dims, shapes, kinds, periodic = [], set(), set(), set(), []
        self.has_length = True  # every shard stores params/domain_length
        for p in self.paths:  # validated in this process; files are closed again before any fork
            s = validate_shard(p, load_values=False)
            dims.add(len(s.u_shape) - 3)
            shapes.add(tuple(s.u_shape[1:]))
            kinds.add((s.pde, s.dataset, tuple(s.field_names)))
            periodic.append(periodic_axes(p))
            missing = [n for n in param_names if n not in s.param_names]
            if missing:
                raise SchemaError(f"{p}: parameters {missing} not stored (have {s.param_names})")
            self.has_length &= "domain_length" in s.param_names
            sizes.append(s.n)
        if len(dims) != 1:
            raise SchemaError(f"{directory}: shards with different numbers of spatial dimensions {sorted(dims)}")
        if not dims <= {1, 2}:
            raise SchemaError(f"{directory}: {dims.pop()}D data; the training loaders read 1D and 2D data")
        if len(kinds) != 1:
            raise SchemaError(f"{directory}: shards of different datasets or channels {sorted(kinds)}")
        if len(shapes) != 1:
            raise SchemaError(
                f"{directory}: shards with different trajectory shapes (T, C, X[, Y]) {sorted(shapes)}; one split "
                "is batched whole: put other frame counts or resolutions in another data directory"
            )
        self.n_spatial_dims = dims.pop()
        self.item_shape = shapes.pop()  # (T, C, X[, Y])
        self.pde, self.dataset_name, fields = kinds.pop()
        self.field_names = list(fields)
        self.periodic_axes = tuple(a for a in periodic[0] if all(a in q for q in periodic))
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.param_names = list(param_names)
        self._files: dict[int, h5py.File] = {}
        self._cache: dict[str, np.ndarray] | None = None
        if preload:
            self._cache = self._read_all()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_files"] = {}  # h5py handles are per process
        return state

    def _file(self, k: int) -> h5py.File:
        if k not in self._files:
            self._files[k] = h5py.File(self.paths[k], "r")
        return self._files[k]

    @property
    def _grid_keys(self) -> list[str]:
        if self.n_spatial_dims == 1:
            return ["x", "params/domain_length"] if self.has_length else ["x"]
        return ["x", "y"]

    def _read_all(self) -> dict[str, np.ndarray]:
        keys = ["u", "t", *self._grid_keys, *[f"params/{n}" for n in self.param_names]]
        out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for p in self.paths:
            with h5py.File(p, "r") as f:
                for k in keys:
                    out[k].append(f[k][...])
            _check_finite(out["u"][-1], p)
        return {k: np.concatenate(v) for k, v in out.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Any]:
        """A whole batch at once (the DataLoader's batched fetch): one fancy-index per array when preloaded."""
        if self._cache is None:
            return default_collate([self[i] for i in indices])
        c, idx = self._cache, np.asarray(indices)

        def f64(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))

        out = {
            "u": torch.from_numpy(np.ascontiguousarray(c["u"][idx], dtype=np.float32)),
            "t": f64(c["t"][idx]),
            "x": f64(c["x"][idx]),
        }
        if self.n_spatial_dims == 1:
            out["length"] = f64(c["params/domain_length"][idx] if self.has_length else _box_length(c["x"][idx]))
        else:
            out["y"] = f64(c["y"][idx])
            out["length"], out["length_y"] = f64(_box_length(out["x"].numpy())), f64(_box_length(out["y"].numpy()))
        out["index"] = torch.from_numpy(idx.astype(np.int64))
        out["params"] = {n: f64(c[f"params/{n}"][idx]) for n in self.param_names}
        return out

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._cache is not None:
            c = self._cache
            row = {k: c[k][i] for k in c}
        else:
            k = bisect.bisect_right(self.offsets, i) - 1
            j = i - int(self.offsets[k])
            f = self._file(k)
            row = {k: f[k][j] for k in ["u", "t", *self._grid_keys, *[f"params/{n}" for n in self.param_names]]}
            _check_finite(row["u"][None], self.paths[k], j)
        out = {
            "u": torch.from_numpy(np.asarray(row["u"], dtype=np.float32)),
            "t": torch.from_numpy(np.asarray(row["t"], dtype=np.float64)),
            "x": torch.from_numpy(np.asarray(row["x"], dtype=np.float64)),
        }
        if self.n_spatial_dims == 1:
            length = row["params/domain_length"] if self.has_length else _box_length(row["x"])
            out["length"] = torch.tensor(float(length), dtype=torch.float64)
        else:
            out["y"] = torch.from_numpy(np.asarray(row["y"], dtype=np.float64))
            out["length"] = torch.tensor(float(_box_length(row["x"])), dtype=torch.float64)
            out["length_y"] = torch.tensor(float(_box_length(row["y"])), dtype=torch.float64)
        out["index"] = torch.tensor(i, dtype=torch.int64)
        out["params"] = {n: torch.tensor(float(row[f"params/{n}"]), dtype=torch.float64) for n in self.param_names}
        return out


def _check_finite(u: np.ndarray, path: Path, first: int = 0) -> None:
    """Refuse non-finite field values, naming the shard and the trajectory index in it; u: (n, T, C, ...)."""
    bad = ~np.isfinite(u).reshape(len(u), -1).all(axis=1)
    if bad.any():
        idx = [first + int(i) for i in np.flatnonzero(bad)[:8]]
        raise DataError(
            f"{path}: non-finite values in /u of trajectory {idx[0]}" + (f" (and {idx[1:]})" if idx[1:] else "")
        )


def _box_length(grid: np.ndarray) -> np.ndarray:
    """Extent of uniform grids (..., n) of cell centres (or periodic points): ``n * spacing``."""
    grid = np.asarray(grid, dtype=np.float64)
    return grid.shape[-1] * (grid[..., 1] - grid[..., 0])


def _already_collated(batch: dict[str, Any]) -> dict[str, Any]:
    return batch


class EpochShuffle(Sampler[int]):
    """A fresh permutation of ``range(n)`` every epoch, drawn from ``(seed, epoch)`` alone.

    Lightning calls :meth:`set_epoch` before each epoch, so a run resumed from a checkpoint at epoch k sees the
    same order as an uninterrupted one (a plain shuffling sampler draws from the global generator, whose state a
    resumed process does not have).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())

    def __len__(self) -> int:
        return self.n


class PDEDataModule(L.LightningDataModule):
    """Train / valid loaders over ``<data_dir>/<dataset>/<split>`` shards.

    Workers only read: every random choice (crops, group parameters) is made on the device by the
    training module from an explicit generator seeded by (seed, step, rank), and the shuffling order by
    :class:`EpochShuffle` from (seed, epoch), so worker processes hold no random state of their own and a
    resumed run sees the data in the uninterrupted run's order.

    Args:
        dir: root of the generated or imported data (``<dir>/<dataset>/<split>/shard-*.h5``).
        dataset: the directory under ``dir``: a registry PDE, or an external dataset's name (``heat``, a dataset of
            The Well); ``external`` itself is refused (``pde=external`` needs ``data.dataset=<name>``).
        batch_size: trajectories per batch (views are built from them on the device).
        num_workers: DataLoader workers (each opens its own HDF5 handles).
        preload: read the splits into memory.
        param_names: scalar parameters returned with each item (the online probe's target among them; None
            entries, a probe switched off, are dropped).
        probe_size: trajectories of the validation split used by the online probe (``None``: all).
        train_split, val_split: split names.
        seed: seed of the validation subset choice and of the shuffling order.
    """

    def __init__(
        self,
        dir: str,
        dataset: str,
        batch_size: int = 64,
        num_workers: int = 0,
        preload: bool = False,
        param_names: list[str | None] | tuple[str | None, ...] = (),
        probe_size: int | None = None,
        train_split: str = "train",
        val_split: str = "valid",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if dataset == EXTERNAL:
            raise UserError("pde=external reads an external dataset: name it with data.dataset=<its directory name>")
        self.data_dir, self.dataset = Path(dir), dataset
        self.batch_size, self.num_workers, self.preload = batch_size, num_workers, preload
        self.param_names = [n for n in param_names if n]
        self.probe_size, self.train_split, self.val_split, self.seed = probe_size, train_split, val_split, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = TrajectoryDataset(
                self.data_dir / self.dataset / self.train_split, self.param_names, self.preload
            )
            val = TrajectoryDataset(self.data_dir / self.dataset / self.val_split, self.param_names, self.preload)
            if self.probe_size is not None and self.probe_size < len(val):
                rng = np.random.default_rng(self.seed)
                val = Subset(val, sorted(rng.choice(len(val), self.probe_size, replace=False).tolist()))
            self.val_set = val

    def _loader(self, ds: Dataset, shuffle: bool, drop_last: bool) -> DataLoader:
        batched = isinstance(getattr(ds, "dataset", ds), TrajectoryDataset)  # __getitems__ returns a collated batch
        return DataLoader(
            ds,
            collate_fn=_already_collated if batched else None,
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(ds), self.seed) if shuffle else None,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None
        return self._loader(self.train_set, shuffle=True, drop_last=len(self.train_set) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None
        return self._loader(self.val_set, shuffle=False, drop_last=False)
