"""One schema-v1 shard written as one file of The Well, which ``the_well.data.WellDataset`` reads.

Layout written (N trajectories of T frames on an X[ × Y[ × Z]] grid, the shard's N)::

    @dataset_name, @grid_type = "cartesian", @n_spatial_dims, @n_trajectories, @simulation_parameters
        (+ a root attribute for each simulation parameter that has one value for the whole file)
    /dimensions/time           (T,) or (N, T) float64   @sample_varying: whether the trajectories' times differ
    /dimensions/x[, y, z]      (X,) or (N, X) float64   @sample_varying, @time_varying = False; group @spatial_dims
    /scalars/<p>               (), (N,), (T,) or (N, T) float64: every parameter; one of shape (N, k) as the k
                               scalars <p>_0 .. <p>_{k-1}; @sample_varying, @time_varying, @description
    /t0_fields/<f>             (N, T, X[, Y[, Z]]) float32: a channel of /u (1D, ns2d's smoke, external channels)
    /t1_fields/velocity        (N, T, X, Y, 2) float32: ns2d's vx, vy (:data:`VECTORS`)
    /t<r>_fields/<c>           (N, X[, Y[, Z]][, D^r]): a time-independent field (``/constants/<c>``)
    /boundary_conditions/<b>   @bc_type (PERIODIC, WALL, OPEN), @associated_dims, @associated_fields,
                               @sample_varying, @time_varying; /mask (X,) bool, True at both ends

Per-file values are written once (``sample_varying`` false, The Well's own convention) when every trajectory of
the file shares them, and per trajectory (``sample_varying`` true, which WellDataset reads) when they differ: the
times and grids of KdV and KS trajectories (their own domain length and time span), the sampled parameters.
Provenance and the inverse maps for ``ssl-pde-import format=well`` are root attributes ``ssl_pde_*``.

A dataset's normalisation statistics, ``<dataset>/stats.yaml`` (:func:`write_stats`), are those of its train split,
what ``WellDataset(..., use_normalization=True, normalization_type=ZScoreNormalization | RMSNormalization)`` reads::

    mean, std, rms:                   {field: value}   every field, time-independent ones included
    mean_delta, std_delta, rms_delta: {field: value}   time-varying fields: of x[t + 1] - x[t]
    ssl_pde:                          {stats_revision, split: train, files: {file name: ssl_pde_export_key}}

A value is a float for a t0 field, a list of D for a t1 field and D lists of D for a t2 field (one per component),
as The Well's ``scripts/compute_statistics.py`` writes them; ``ssl_pde`` (ignored by WellDataset) names the files
they were computed from, so that a rerun recomputes them exactly when the train files changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import yaml

from data_gen.claims import temp_path
from data_gen.importers.well import ROOT_ATTRS
from data_gen.writer import generator_version
from ssl_pde.core.errors import UserError
from ssl_pde.data.schema import EXTERNAL, SPATIAL_NAMES, validate_shard
from ssl_pde.pdes import PDES

EXPORTER_REVISION = 1  # bump when the mapping changes what a file holds: old files then count as other data
SUFFIX = ".hdf5"
BC_TYPES = ("WALL", "OPEN", "PERIODIC")  # the_well.data.datasets.BoundaryCondition
#: The root ``boundary`` attribute of a shard without ``/boundary_conditions`` -> the type on every spatial axis.
BOUNDARY_TYPES = {"periodic": "PERIODIC", "closed_box": "WALL"}
#: Registry PDE -> its vector fields: The Well's rank-1 field name -> the channels that are its components (one per
#: spatial axis, in axis order). Every other channel is a rank-0 field of its own name.
VECTORS: dict[str, dict[str, tuple[str, ...]]] = {"ns2d": {"velocity": ("vx", "vy")}}


@dataclass(frozen=True)
class Field:
    """One field of The Well, ``t<rank>_fields/<name>``.

    Attributes:
        rank: 0 (scalar field), 1 (vector), 2 (tensor).
        name: its name in The Well.
        channels: indices into the shard's channel axis C (rank 0: one; rank 1: one per spatial axis); empty for
            a time-independent field.
        constant: the ``/constants/<name>`` it copies, or None for a time-varying field.
    """

    rank: int
    name: str
    channels: tuple[int, ...] = ()
    constant: str | None = None


@dataclass(frozen=True)
class Scalar:
    """One entry of ``/scalars``.

    Attributes:
        name: its name in The Well.
        values: (N,) or, when ``time_varying``, (N, T) float64.
        time_varying: one value per frame.
        description: what it is (the shard parameter's ``description``).
    """

    name: str
    values: np.ndarray
    time_varying: bool
    description: str


@dataclass(frozen=True)
class Bc:
    """One ``/boundary_conditions/<name>`` group: type, axes, mask ((X,) or (N, X) when sample-varying)."""

    name: str
    bc_type: str
    dims: tuple[str, ...]
    mask: np.ndarray
    sample_varying: bool = False


@dataclass
class WellPlan:
    """What the file made from one shard holds, read from the shard's metadata (its fields stay on disk).

    Attributes:
        source: the shard.
        dataset: the dataset (a registry PDE or an external dataset's name), The Well's ``dataset_name``.
        pde: the shard's ``pde`` attribute (a registry PDE or ``external``).
        split: train, valid or test.
        n: trajectories (N).
        shape: one trajectory of ``/u``, (T, C, X[, Y[, Z]]).
        dims: ``time`` (N, T) and each spatial axis (N, X) float64.
        fields: the fields, time-varying ones first (WellDataset's channels follow the shard's order).
        scalars: the scalars; ``simulation`` lists those named in ``simulation_parameters``.
        boundaries: the boundary conditions.
        field_map: shard channel -> The Well's channel name (``velocity_x``).
        param_map: shard parameter -> its scalar, or the list of its component scalars.
        simulation: the parameters named in ``simulation_parameters`` (those with one value per trajectory).
        left_out: parameters not exported (with ``components=False``: those of shape (N, k)).
        attrs: the shard's root attributes.
    """

    source: Path
    dataset: str
    pde: str
    split: str
    n: int
    shape: tuple[int, ...]
    dims: dict[str, np.ndarray]
    fields: list[Field]
    scalars: list[Scalar]
    boundaries: list[Bc]
    field_map: dict[str, str]
    param_map: dict[str, str | list[str]]
    simulation: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def layout(self) -> tuple:
        """What every file of one WellDataset directory must share: resolution, channels, fields, scalars."""
        scalars = [(s.name, s.time_varying) for s in self.scalars]
        return self.shape[1:], [(f.rank, f.name, f.constant) for f in self.fields], scalars, self.param_map


def plan(path: Path, components: bool = True) -> WellPlan:
    """Validate a shard against the schema and map it onto The Well's layout (read: coordinates and parameters).

    Args:
        path: the shard.
        components: write a parameter of shape (N, k) (initial-condition coefficients) as k scalars; else leave
            it out (``ssl_pde_params_left_out``; the importer then lists it in ``params_unknown``).

    Raises:
        SchemaError: the shard is not a valid schema-v1 shard.
        UserError: it cannot be written as The Well's file (a name it cannot hold, an unknown boundary type).
    """
    s = validate_shard(path)
    nd = len(s.u_shape) - 3
    axes = SPATIAL_NAMES[:nd]
    with h5py.File(path, "r") as f:
        dims = {"time": f["t"][...], **{a: f[a][...] for a in axes}}
        describe = {name: str(f[f"params/{name}"].attrs.get("description", name)) for name in s.param_names}
        constants = {k: ds.shape for k, ds in f["constants"].items()} if "constants" in f else {}
        boundaries = _boundaries(f, s.attrs, axes, path)
    fields, field_map = _fields(s.pde, s.field_names, axes, path)
    for name, shape in constants.items():
        rank = len(shape) - 1 - nd
        if shape[1 : 1 + nd] != s.u_shape[3:] or not 0 <= rank <= 2 or any(d != nd for d in shape[1 + nd :]):
            raise UserError(f"{path}: /constants/{name} has shape {shape}, not (N, grid[, {nd}]*rank)")
        fields.append(Field(rank, name, constant=name))
    params = {k: v for k, v in s.params.items() if components or _single(v, s.u_shape[1], s.pde == EXTERNAL)}
    scalars, param_map = _scalars(params, describe, s.u_shape[1], external=s.pde == EXTERNAL)
    _check_names(path, [f.name for f in fields], "field")
    _check_names(path, [sc.name for sc in scalars], "scalar")
    simulation = [name for name, v in params.items() if np.ndim(v) == 1]
    clash = [name for name in simulation if name in ROOT_ATTRS or name.startswith("ssl_pde_")]
    if clash:
        raise UserError(f"{path}: parameters {clash} would overwrite root attributes of The Well's layout")
    return WellPlan(
        source=path,
        dataset=s.dataset,
        pde=s.pde,
        split=s.split,
        n=s.n,
        shape=tuple(s.u_shape[1:]),
        dims=dims,
        fields=fields,
        scalars=scalars,
        boundaries=boundaries,
        field_map=field_map,
        param_map=param_map,
        simulation=simulation,
        left_out=[name for name in s.params if name not in params],
        attrs=s.attrs,
    )


def export_key(p: WellPlan, sha256: str) -> str:
    """Hash of everything that determines a file's content: the shard's name and sha256, the parameters left out,
    the exporter revision."""
    blob = {"source": p.source.name, "sha256": sha256, "left_out": p.left_out, "revision": EXPORTER_REVISION}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def existing_key(path: Path) -> str | None:
    """The ``ssl_pde_export_key`` of a file at ``path`` ("" when it is no file of this exporter), None if absent."""
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("ssl_pde_export_key", ""))
    except OSError:
        return ""


def write(path: Path, p: WellPlan, provenance: dict[str, str]) -> None:
    """Write the file of ``p`` at ``path``, one trajectory at a time: a temporary file first, then a rename.

    Args:
        path: the file (``<dataset>/data/<split>/<shard>.hdf5``).
        p: its plan.
        provenance: root attributes naming the source (``ssl_pde_source_sha256``, ``ssl_pde_export_key``, ...).
    """
    tmp = temp_path(path)
    try:
        with h5py.File(p.source, "r") as src, h5py.File(tmp, "w") as f:
            _write_dimensions(f, p)
            _write_scalars(f, p)
            _write_fields(f, src, p)
            _write_boundaries(f, p)
            _write_attrs(f, p, provenance)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fields(pde: str, names: list[str], axes: tuple[str, ...], path: Path) -> tuple[list[Field], dict[str, str]]:
    """Rank-0 fields for the channels outside :data:`VECTORS`, then the vector fields, with the channel map."""
    vectors = VECTORS.get(pde, {})
    grouped = {c for comps in vectors.values() for c in comps}
    fields = [Field(0, c, (i,)) for i, c in enumerate(names) if c not in grouped]
    field_map = {c: c for c in names if c not in grouped}
    for name, comps in vectors.items():
        if len(comps) != len(axes):
            raise UserError(f"{path}: vector field {name} has {len(comps)} components on {len(axes)} axes")
        fields.append(Field(1, name, tuple(names.index(c) for c in comps)))
        field_map.update({c: f"{name}_{a}" for c, a in zip(comps, axes, strict=True)})
    if [field_map[c] for c in names] != [c for f in fields for c in _channels(f, axes)]:
        raise UserError(f"{path}: channels {names} would not keep their order in The Well's layout")
    return fields, field_map


def _channels(f: Field, axes: tuple[str, ...]) -> list[str]:
    """WellDataset's channel names of a time-varying field (``velocity_x``, ...)."""
    return [f.name] if f.rank == 0 else [f"{f.name}_{a}" for a in axes]


def _scalars(
    params: dict[str, np.ndarray], describe: dict[str, str], nt: int, external: bool
) -> tuple[list[Scalar], dict[str, str | list[str]]]:
    """Every parameter as scalars: (N,) as is; (N, T) of an external dataset as a time-varying scalar (what the
    importer makes of The Well's); any other (N, k, ...) as k scalars ``<name>_<j>`` (initial-condition
    coefficients), with the parameter -> scalar(s) map."""
    scalars: list[Scalar] = []
    param_map: dict[str, str | list[str]] = {}
    for name, v in params.items():
        v = np.asarray(v, dtype=np.float64)
        if _single(v, nt, external):
            scalars.append(Scalar(name, v, v.ndim == 2, describe[name]))
            param_map[name] = name
            continue
        flat = v.reshape(len(v), -1)
        names = [f"{name}_{j}" for j in range(flat.shape[1])]
        what = f"component {{j}} of {name} {v.shape[1:]} (flattened, C order): {describe[name]}"
        scalars += [Scalar(c, flat[:, j], False, what.format(j=j)) for j, c in enumerate(names)]
        param_map[name] = names
    return scalars, param_map


def _single(v: np.ndarray, nt: int, external: bool) -> bool:
    """Whether a parameter is one scalar of The Well: (N,), or an external dataset's (N, T) (one per frame)."""
    return np.ndim(v) == 1 or (external and np.shape(v)[1:] == (nt,))


def _boundaries(f: h5py.File, attrs: dict[str, Any], axes: tuple[str, ...], path: Path) -> list[Bc]:
    """The shard's ``/boundary_conditions`` (a group without a mask: one per axis, the mask at both ends), else the
    type its ``boundary`` attribute names on every axis (periodic, closed_box), else none ("not stated")."""
    stated = []
    for name, g in f.get("boundary_conditions", {}).items():
        dims = tuple(str(g.attrs["associated_dims"]).split())
        stated.append((name, str(g.attrs["bc_type"]).upper(), dims, g["mask"][...] if "mask" in g else None))
    if not stated:
        boundary = str(attrs.get("boundary", ""))
        if boundary == "not stated":
            return []
        if boundary not in BOUNDARY_TYPES:
            raise UserError(f"{path}: boundary {boundary!r} has no type of The Well (known: {sorted(BOUNDARY_TYPES)})")
        stated = [(None, BOUNDARY_TYPES[boundary], axes, None)]
    out = []
    for name, bc_type, dims, mask in stated:
        if bc_type not in BC_TYPES or not dims or not set(dims) <= set(axes):
            raise UserError(f"{path}: boundary {name or bc_type!r} ({bc_type} on {dims}): WellDataset reads {BC_TYPES}")
        if mask is not None:
            out.append(Bc(name, bc_type, dims, mask.astype(bool), mask.ndim > len(dims)))
            continue
        for a in dims:
            n = f[a].shape[1]
            out.append(Bc(f"{a}_{bc_type.lower()}", bc_type, (a,), np.isin(np.arange(n), [0, n - 1])))
    return out


def _check_names(path: Path, names: list[str], what: str) -> None:
    """Refuse names HDF5 cannot hold as one member, or one name twice."""
    for name in names:
        if not name or "/" in name or name in (".", ".."):
            raise UserError(f"{path}: {what} name {name!r} cannot be a member of an HDF5 group")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{path}: {what} names {dup} would occur twice in The Well's layout")


def _once(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """(values, sample_varying): a per-trajectory array (N, ...) as one row when every row is equal."""
    if all(np.array_equal(values[0], row) for row in values[1:]):
        return values[0], False
    return values, True


def _write_dimensions(f: h5py.File, p: WellPlan) -> None:
    g = f.create_group("dimensions")
    g.attrs["spatial_dims"] = list(p.dims)[1:]
    for name, values in p.dims.items():
        data, per_traj = _once(values)
        ds = g.create_dataset(name, data=data)
        ds.attrs.update(sample_varying=per_traj, time_varying=name == "time")


def _write_scalars(f: h5py.File, p: WellPlan) -> None:
    g = f.create_group("scalars")
    g.attrs["field_names"] = _names([s.name for s in p.scalars])
    for s in p.scalars:
        data, per_traj = _once(s.values)
        ds = g.create_dataset(s.name, data=data)
        ds.attrs.update(sample_varying=per_traj, time_varying=s.time_varying, description=s.description)
        if s.name in p.simulation and not per_traj:
            f.attrs[s.name] = data  # The Well's root attribute: one value per file
    f.attrs["simulation_parameters"] = _names(p.simulation)


def _write_fields(f: h5py.File, src: h5py.File, p: WellPlan) -> None:
    """The time-varying fields from ``/u`` and the time-independent ones from ``/constants``, one trajectory at a
    time, float32 as stored."""
    space, nd = p.shape[2:], len(p.shape) - 2
    groups = [f.create_group(f"t{rank}_fields") for rank in range(3)]
    out = []
    for fld in p.fields:
        g = groups[fld.rank]
        if fld.constant is None:
            shape, dtype = (p.n, p.shape[0], *space, *(nd,) * fld.rank), np.float32
        else:
            shape, dtype = src[f"constants/{fld.constant}"].shape, src[f"constants/{fld.constant}"].dtype
        ds = g.create_dataset(fld.name, shape=shape, dtype=dtype)
        ds.attrs.update(dim_varying=[True] * nd, sample_varying=True, time_varying=fld.constant is None)
        out.append((fld, ds))
    for rank, g in enumerate(groups):
        g.attrs["field_names"] = _names([fld.name for fld in p.fields if fld.rank == rank])
    u = src["u"]
    for i in range(p.n):
        a = u[i]  # (T, C, X[, Y[, Z]])
        for fld, ds in out:
            if fld.constant is not None:
                ds[i] = src[f"constants/{fld.constant}"][i]
            elif fld.rank == 0:
                ds[i] = a[:, fld.channels[0]]
            else:
                ds[i] = np.moveaxis(a[:, list(fld.channels)], 1, -1)


def _write_boundaries(f: h5py.File, p: WellPlan) -> None:
    g = f.create_group("boundary_conditions")
    for b in p.boundaries:
        bg = g.create_group(b.name)
        bg.attrs.update(bc_type=b.bc_type, associated_dims=list(b.dims), sample_varying=b.sample_varying)
        bg.attrs.update(associated_fields=_names([]), time_varying=False)
        bg.create_dataset("mask", data=b.mask)


def _write_attrs(f: h5py.File, p: WellPlan, provenance: dict[str, str]) -> None:
    a = f.attrs
    a.update(dataset_name=p.dataset, grid_type="cartesian", n_spatial_dims=len(p.shape) - 2, n_trajectories=p.n)
    a["ssl_pde_version"] = generator_version()
    a["ssl_pde_pde"] = p.pde
    a["ssl_pde_split"] = p.split
    a["ssl_pde_fields"] = json.dumps(p.field_map)
    a["ssl_pde_params"] = json.dumps(p.param_map)
    a["ssl_pde_params_left_out"] = _names(p.left_out)
    a["ssl_pde_equation"] = str(p.attrs.get("equation", PDES[p.pde].equation if p.pde in PDES else ""))
    a["ssl_pde_source_config_yaml"] = str(p.attrs.get("config_yaml", ""))
    a.update(provenance)


def _names(names: list[str]) -> np.ndarray:
    """A list of names as an HDF5 string-array attribute (also when empty)."""
    return np.array(names, dtype=h5py.string_dtype())


# Normalisation statistics: <dataset>/stats.yaml ------------------------------------------------------------------

STATS = "stats.yaml"
STATS_REVISION = 1  # bump when the statistics are computed differently: old files are then recomputed
#: The statistics of The Well's ``stats.yaml``: ``ZScoreNormalization`` reads mean, std, mean_delta, std_delta,
#: ``RMSNormalization`` rms, rms_delta (the_well.data.normalization).
STATS_KEYS = ("mean", "std", "rms", "mean_delta", "std_delta", "rms_delta")
STATS_PROVENANCE = "ssl_pde"  # the key naming the files the statistics cover (WellDataset ignores it)
BLOCK_BYTES = 64 * 2**20  # a time-varying field is read a block of frames at a time, about this many float64 bytes


@dataclass
class Moments:
    """Count, mean and sum of squared deviations of a field's values, per component, in float64, accumulated one
    block of values at a time (the pairwise update of Chan, Golub and LeVeque: no block is kept)."""

    count: int = 0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(()))
    m2: np.ndarray = field(default_factory=lambda: np.zeros(()))

    def add(self, x: np.ndarray, rank: int) -> None:
        """Add the values of ``x`` (..., D^rank): every axis but the last ``rank`` (the components) is reduced."""
        axes = tuple(range(x.ndim - rank))
        n = math.prod(x.shape[: x.ndim - rank])
        if n == 0:
            return
        mean = x.mean(axis=axes)
        m2 = np.square(x - mean).sum(axis=axes)
        total = self.count + n
        d = mean - self.mean
        self.mean = self.mean + d * (n / total)
        self.m2 = self.m2 + m2 + np.square(d) * (self.count * n / total)
        self.count = total

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, std, rms) of the values added: the population standard deviation (divided by the count), and the
        root of the mean square."""
        var = self.m2 / self.count
        return self.mean, np.sqrt(var), np.sqrt(var + np.square(self.mean))


def stats_path(dataset_dir: Path) -> Path:
    """``<dataset_dir>/stats.yaml``: where ``WellDataset(path=dataset_dir)`` looks for it."""
    return dataset_dir / STATS


def train_files(dataset_dir: Path) -> list[Path]:
    """The files ``WellDataset(path=dataset_dir, well_split_name="train")`` reads: ``data/train/*.h5`` and
    ``*.hdf5``, sorted (temporary and lock files of a run end otherwise)."""
    d = dataset_dir / "data" / "train"
    return sorted([*d.glob("*.h5"), *d.glob("*.hdf5")])


def stats_sources(dataset_dir: Path) -> dict[str, str]:
    """Train file name -> its ``ssl_pde_export_key`` ("" for a file of no export), what the statistics cover."""
    return {p.name: existing_key(p) or "" for p in train_files(dataset_dir)}


def existing_stats(dataset_dir: Path) -> dict[str, Any] | str | None:
    """The ``ssl_pde`` entry of the dataset's ``stats.yaml``: None when there is none, "" when it is no file of this
    exporter (another's statistics, or unreadable)."""
    path = stats_path(dataset_dir)
    if not path.exists():
        return None
    try:
        stats = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return ""
    prov = stats.get(STATS_PROVENANCE) if isinstance(stats, dict) else None
    return prov if isinstance(prov, dict) else ""


def stats_current(dataset_dir: Path) -> bool:
    """Whether the dataset's ``stats.yaml`` was computed, by this revision, from exactly the train files there now."""
    prov = existing_stats(dataset_dir)
    if not isinstance(prov, dict) or prov.get("stats_revision") != STATS_REVISION:
        return False
    sources = stats_sources(dataset_dir)
    return bool(sources) and all(sources.values()) and prov.get("files") == sources


def compute_stats(files: list[Path]) -> dict[str, dict[str, Any]]:
    """The statistics of ``stats.yaml`` over every value of every field of ``files`` (:data:`STATS_KEYS`).

    A field is read one trajectory at a time (a time-varying one in blocks of frames, :data:`BLOCK_BYTES`) and
    its moments accumulated in float64: mean, std (population) and rms over every trajectory, frame and grid
    point, per component of a vector or tensor field; the ``_delta`` ones, for a time-varying field, over the
    differences of consecutive frames of each trajectory (none across trajectories). What The Well's
    ``scripts/compute_statistics.py`` computes on a train split, but streamed.

    Raises:
        UserError: a field's rank or component shape differs between files.
    """
    values: dict[str, Moments] = {}
    deltas: dict[str, Moments] = {}
    kinds: dict[str, tuple[int, tuple[int, ...], Path]] = {}
    for path in files:
        with h5py.File(path, "r") as f:
            for rank in range(3):
                group = f[f"t{rank}_fields"]
                for name in map(str, group.attrs["field_names"]):
                    ds = group[name]
                    rank_, comps, first = kinds.setdefault(name, (rank, ds.shape[ds.ndim - rank :], path))
                    if (rank_, comps) != (rank, ds.shape[ds.ndim - rank :]):
                        got = f"t{rank} {ds.shape}"
                        raise UserError(f"{path}: field {name} is {got}, t{rank_} (..., {comps}) in {first}")
                    moments = values.setdefault(name, Moments())
                    changes = deltas.setdefault(name, Moments()) if ds.attrs["time_varying"] else None
                    for x, dx in _field_blocks(ds):
                        moments.add(x, rank)
                        if changes is not None:
                            changes.add(dx, rank)
    stats: dict[str, dict[str, Any]] = {key: {} for key in STATS_KEYS}
    for suffix, moments in (("", values), ("_delta", deltas)):
        for name, m in moments.items():
            if m.count == 0:
                continue  # a field of single frames has no delta
            for key, v in zip(("mean", "std", "rms"), m.result(), strict=True):
                stats[key + suffix][name] = np.asarray(v, dtype=np.float64).tolist()
    return stats


def _field_blocks(ds: h5py.Dataset) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """A field's values in float64 blocks, one trajectory (one block of frames of it) at a time, each with the
    differences of its consecutive frames (the first with the previous block's last frame); None when
    time-independent."""
    per_traj = bool(ds.attrs["sample_varying"])
    rows = [(i,) for i in range(ds.shape[0])] if per_traj else [()]
    if not ds.attrs["time_varying"]:
        for row in rows:
            yield ds[row].astype(np.float64), None
        return
    nt = ds.shape[len(rows[0])]
    frame = math.prod(ds.shape[len(rows[0]) + 1 :]) * 8
    step = max(1, BLOCK_BYTES // max(frame, 1))
    for row in rows:
        last = None
        for start in range(0, nt, step):
            x = ds[(*row, slice(start, start + step))].astype(np.float64)
            yield x, np.diff(x if last is None else np.concatenate([last, x]), axis=0)
            last = x[-1:]


def write_stats(dataset_dir: Path) -> dict[str, dict[str, Any]]:
    """Compute the statistics of the dataset's train split (every file ``WellDataset`` reads there) and write them
    to ``<dataset_dir>/stats.yaml``: a temporary file first, then a rename. Returns them."""
    sources = stats_sources(dataset_dir)
    stats: dict[str, Any] = compute_stats(train_files(dataset_dir))
    stats[STATS_PROVENANCE] = {"stats_revision": STATS_REVISION, "split": "train", "files": sources}
    path = stats_path(dataset_dir)
    tmp = temp_path(path)
    try:
        tmp.write_text(yaml.safe_dump(stats, sort_keys=True))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return stats
