"""The Well's HDF5 files mapped onto the schema: an external dataset, unless :data:`REGISTRY_MAPS` maps it onto a
registry PDE.

Layout (one file holds N trajectories of one dataset; files lie in ``<dataset>/data/{train,valid,test}/``)::

    @dataset_name, @n_spatial_dims, @n_trajectories, @grid_type, @simulation_parameters (+ one attribute each)
    /dimensions/time, /dimensions/<d>     (T,) or (N, T); (X,) or (N, X) (attribute sample_varying)
    /scalars/<s>                          (), (N,), (T,) or (N, T) (attributes sample_varying, time_varying)
    /t0_fields/<f>, /t1_fields/<f>, /t2_fields/<f>
                                          ([N,] [T,] X, Y[, Z], [D[, D]]): scalar, vector, tensor fields
    /boundary_conditions/<b>              @bc_type, @associated_dims, /mask

Time-varying fields become channels of ``/u`` in group order (t0, t1, t2; each group in its ``field_names``
order), a vector field as one channel per component (``velocity_x``, ``velocity_y``), a tensor field as one per
pair (``stress_xy``); time-independent fields go to ``/constants/<name>``; scalars and simulation parameters to
``/params`` (one value per file broadcast to every trajectory, the origin recorded); a time-varying scalar is a
parameter (N, T). The split is the name of the directory holding the file when that is train, valid or test.
A file ``ssl-pde-export`` wrote from a registry PDE's shards is mapped back onto that PDE by the map it carries
(:func:`exported_map`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from data_gen.importers.base import (
    Boundary,
    Constant,
    Mapped,
    Param,
    SourceError,
    expect_keys,
    registry_unknown,
)
from ssl_pde.data.schema import DATASET_NAME, EXTERNAL, SPATIAL_NAMES, SPLITS
from ssl_pde.pdes import PDES

ROOT_KEYS = ("boundary_conditions", "dimensions", "scalars", "t0_fields", "t1_fields", "t2_fields")
ROOT_ATTRS = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories", "simulation_parameters")


@dataclass(frozen=True)
class RegistryMap:
    """How a dataset of The Well maps onto a registry PDE.

    Attributes:
        pde: the registry PDE.
        fields: registry field -> the Well channel it is (every channel must be mapped), e.g. ``{"vx": "velocity_x"}``.
        params: registry parameter -> the Well scalar or simulation parameter it is.
    """

    pde: str
    fields: dict[str, str]
    params: dict[str, str | list[str]]


#: The hook: The Well's ``dataset_name`` -> its registry PDE. Empty: every dataset of The Well is external (none of
#: its datasets is one of this project's PDEs); an entry makes ``ssl-pde-import`` write that dataset as the PDE.
#: Files ``ssl-pde-export`` wrote from a registry PDE's shards need no entry: they carry their own map
#: (:func:`exported_map`). A parameter may map onto a list of scalars, its components, stacked into (N, k).
REGISTRY_MAPS: dict[str, RegistryMap] = {}
EXPORT_ATTRS = ("ssl_pde_pde", "ssl_pde_fields", "ssl_pde_params")  # written by data_gen.exporters.well


def read(f: h5py.File, path: Path) -> Mapped:
    """Map a file of The Well; the split is its directory's name when that is a split.

    Raises:
        SourceError: a missing or unexpected key or attribute, or an array whose shape its flags contradict.
    """
    for name in ROOT_ATTRS:
        if name not in f.attrs:
            raise SourceError(f"{path}: missing root attribute {name!r}")
    expect_keys(f, ROOT_KEYS, path)
    dataset = _str(f.attrs["dataset_name"])
    if not DATASET_NAME.fullmatch(dataset) or dataset == EXTERNAL:
        raise SourceError(f"{path}: root attribute dataset_name {dataset!r} is not usable as a directory name")
    nd, n = int(f.attrs["n_spatial_dims"]), int(f.attrs["n_trajectories"])
    dims = _strs(f["dimensions"].attrs.get("spatial_dims"))
    if len(dims) != nd or not 1 <= nd <= len(SPATIAL_NAMES):
        raise SourceError(f"{path}: '/dimensions' attribute spatial_dims {dims} does not give n_spatial_dims={nd} axes")
    expect_keys(f["dimensions"], ["time", *dims], path)
    t = _coord(f["dimensions"], "time", n, path)
    grid = {SPATIAL_NAMES[k]: _coord(f["dimensions"], d, n, path) for k, d in enumerate(dims)}
    shape = _Shape(n, t.shape[1], tuple(a.shape[1] for a in grid.values()), len(dims))
    channels, readers, constants = _fields(f, dims, shape, path)
    sim = _strs(f.attrs["simulation_parameters"])
    boundaries = _boundaries(f, n, path)
    extra = {k: _str(v) for k, v in f.attrs.items() if k not in ROOT_ATTRS and k not in sim}

    def trajectory(i: int) -> np.ndarray:
        parts = [(ds[i] if per_traj else ds[...]).reshape(shape.t, *shape.space, -1) for ds, per_traj in readers]
        return np.concatenate([np.moveaxis(a, -1, 1) for a in parts], axis=1)

    mapped = Mapped(
        dataset=dataset,
        pde=None,
        split=path.parent.name if path.parent.name in SPLITS else None,
        n=n,
        field_names=tuple(channels),
        trajectory=trajectory,
        t=t,
        grid=grid,
        params=_scalars(f, sim, shape, path),
        boundary=_summary(boundaries),
        boundaries=boundaries,
        equation=f"not stated in the file (The Well dataset {dataset})",
        constants=constants,
        notes={
            "dimensions": f"The Well's dims {dims} stored as {list(grid)}; grid_type {_str(f.attrs['grid_type'])}",
            "channels": "time-varying t0 fields, then t1 components, then t2 components, in field_names order",
            "time": "/t is dimensions/time as given (float32 values, stored as float64 exactly)",
            "values": "fields in The Well's own dtype, stored as float32",
            **({"source_attributes": json.dumps(extra, sort_keys=True)} if extra else {}),
        },
    )
    rm = REGISTRY_MAPS.get(dataset) or exported_map(f, path)
    return _to_registry(mapped, rm, path) if rm else mapped


def exported_map(f: h5py.File, path: Path) -> RegistryMap | None:
    """The registry map a file of ``ssl-pde-export`` carries (root attributes ``ssl_pde_pde``, ``ssl_pde_fields``,
    ``ssl_pde_params``: registry channel -> The Well's channel, parameter -> scalar or component scalars), or None
    for any other file and for an exported external dataset."""
    if _str(f.attrs.get("ssl_pde_pde", EXTERNAL)) not in PDES:
        return None
    try:
        pde, fields, params = (_str(f.attrs[k]) for k in EXPORT_ATTRS)
        return RegistryMap(pde, dict(json.loads(fields)), dict(json.loads(params)))
    except (KeyError, ValueError, TypeError) as e:
        raise SourceError(f"{path}: ssl-pde-export's root attributes {list(EXPORT_ATTRS)} are unusable ({e})") from None


@dataclass(frozen=True)
class _Shape:
    n: int
    t: int
    space: tuple[int, ...]
    nd: int


def _fields(f: h5py.File, dims: list[str], shape: _Shape, path: Path) -> tuple[list[str], list, dict[str, Constant]]:
    """Channel names, (dataset, per-trajectory) readers of the time-varying fields, and the time-independent ones."""
    channels: list[str] = []
    readers: list[tuple[h5py.Dataset, bool]] = []
    constants: dict[str, Constant] = {}
    for rank in (0, 1, 2):
        group = f[f"t{rank}_fields"]
        for key in _listed(group, path):
            ds = group[key]
            per_traj, varying = _flags(ds, path)
            dim_varying = np.atleast_1d(ds.attrs.get("dim_varying", True))
            if not dim_varying.all():
                raise SourceError(
                    f"{path}: {ds.name!r} has dim_varying {dim_varying.tolist()}; only fields varying along every "
                    "axis are mapped"
                )
            expect = (shape.n,) * per_traj + (shape.t,) * varying + shape.space + (shape.nd,) * rank
            if ds.shape != expect:
                raise SourceError(f"{path}: {ds.name!r} has shape {ds.shape}, expected {expect} from its attributes")
            if varying:
                channels += ["_".join([key, "".join(c)]) if rank else key for c in itertools.product(dims, repeat=rank)]
                readers.append((ds, per_traj))
            else:
                constants[key] = Constant(
                    read=(lambda i, d=ds: d[i]) if per_traj else (lambda i, d=ds: d[...]),
                    description=f"time-independent rank-{rank} field {key} of The Well",
                    origin=f"{ds.name} " + ("(per trajectory)" if per_traj else "(one per file, broadcast)"),
                )
    if not channels:
        raise SourceError(f"{path}: no time-varying field in t0_fields, t1_fields or t2_fields")
    return channels, readers, constants


def _scalars(f: h5py.File, sim: list[str], shape: _Shape, path: Path) -> dict[str, Param]:
    """``/scalars`` and the simulation parameters as parameters (N or 1, [T]) float64, each with its origin."""
    params: dict[str, Param] = {}
    for key in _listed(f["scalars"], path):
        ds = f["scalars"][key]
        per_traj, varying = _flags(ds, path)
        if ds.shape != (shape.n,) * per_traj + (shape.t,) * varying:
            raise SourceError(f"{path}: {ds.name!r} has shape {ds.shape}, which its attributes contradict")
        values = ds[...].astype(np.float64).reshape(shape.n if per_traj else 1, *((shape.t,) if varying else ()))
        also = f" (also root attribute {key})" if key in f.attrs else ""
        what = "simulation parameter" if key in sim else "scalar"
        params[key] = Param(
            values,
            f"{what} {key} of The Well" + (", one value per stored frame" if varying else ""),
            f"/scalars/{key}{also}, " + ("per trajectory" if per_traj else "one value per file, broadcast"),
        )
    for key in sim:
        if key in params:
            continue
        if key not in f.attrs or np.size(f.attrs[key]) != 1:
            raise SourceError(f"{path}: missing root attribute {key!r} (a simulation parameter)")
        value = np.asarray(f.attrs[key], dtype=np.float64).reshape(1)
        params[key] = Param(
            value, f"simulation parameter {key} of The Well", f"root attribute {key}, one per file, broadcast"
        )
    return params


def _boundaries(f: h5py.File, n: int, path: Path) -> list[Boundary]:
    """``/boundary_conditions/<name>``: type, dimensions and mask ((X,) or, when sample-varying, (N, X)) of each."""
    out = []
    for key, g in f["boundary_conditions"].items():
        for attr in ("bc_type", "associated_dims"):
            if not isinstance(g, h5py.Group) or attr not in g.attrs:
                raise SourceError(f"{path}: missing attribute {attr!r} of '/boundary_conditions/{key}'")
        expect_keys(g, ["mask"] if "mask" in g else [], path)
        per_traj = bool(g.attrs.get("sample_varying", False))
        mask = g["mask"][...] if "mask" in g else None
        if per_traj and mask is not None and mask.shape[0] != n:
            raise SourceError(f"{path}: '/boundary_conditions/{key}/mask' has {mask.shape[0]} rows, expected {n}")
        dims = " ".join(_strs(g.attrs["associated_dims"]))
        out.append(Boundary(key, _str(g.attrs["bc_type"]).upper(), dims, f"/boundary_conditions/{key}", mask, per_traj))
    return out


def _summary(boundaries: list[Boundary]) -> str:
    """The root ``boundary`` attribute: the one type all boundaries share (``periodic``), else one per boundary."""
    types = {b.bc_type.lower() for b in boundaries}
    if len(types) <= 1:
        return types.pop() if types else "not stated"
    return "; ".join(f"{b.dims}: {b.bc_type.lower()}" for b in boundaries)


def _to_registry(m: Mapped, rm: RegistryMap, path: Path) -> Mapped:
    """``m`` as the registry PDE ``rm.pde``: its channels reordered and renamed, its parameters renamed."""
    spec = PDES[rm.pde]
    if len(m.grid) != spec.n_spatial_dims:
        raise SourceError(f"{path}: {len(m.grid)} spatial dims, but REGISTRY_MAPS maps {m.dataset} onto {rm.pde}")
    for channel in m.field_names:
        if channel not in rm.fields.values():
            raise SourceError(f"{path}: unexpected channel {channel!r}, which the registry map of {m.dataset!r} omits")
    for name in spec.field_names:
        if rm.fields.get(name) not in m.field_names:
            where = f"the registry map of {m.dataset!r} maps to {rm.pde} field {name!r}"
            raise SourceError(f"{path}: missing channel {rm.fields.get(name)!r}, which {where}")
    idx = [m.field_names.index(rm.fields[name]) for name in spec.field_names]
    read = m.trajectory
    params = dict(m.params)
    for name, key in rm.params.items():
        keys = [key] if isinstance(key, str) else list(key)
        params = {k: v for k, v in params.items() if k not in keys}
        for k in keys:
            if k not in m.params:
                raise SourceError(f"{path}: missing scalar {k!r} that the registry map of {m.dataset!r} maps to {name}")
        if isinstance(key, str):
            src = m.params[key]
            params[name] = Param(src.values, spec.params_doc.get(name, name), f"{src.origin}; The Well's {key}")
        else:  # components (N or 1,) stacked into (N or 1, k)
            parts = np.broadcast_arrays(*(m.params[k].values for k in keys))
            origin = f"/scalars/{keys[0]} .. /scalars/{keys[-1]} stacked ({len(keys)} components)"
            params[name] = Param(np.stack(parts, axis=1), spec.params_doc.get(name, name), origin)
    return dataclasses.replace(
        m,
        dataset=rm.pde,
        pde=rm.pde,
        field_names=spec.field_names,
        trajectory=lambda i: read(i)[:, idx],
        params=params,
        boundary=spec.boundary,
        equation=spec.equation,
        unknown=registry_unknown(rm.pde, params, f"The Well's {m.dataset} does not store it"),
        notes={
            **m.notes,
            "registry": f"The Well's {m.dataset} mapped onto {rm.pde}: fields {rm.fields}, params {rm.params}",
        },
    )


def _coord(g: h5py.Group, key: str, n: int, path: Path) -> np.ndarray:
    """A coordinate (n, L) when sample-varying, else (1, L), float64."""
    ds = g[key]
    per_traj = bool(ds.attrs.get("sample_varying", False))
    if ds.ndim != 1 + per_traj or (per_traj and ds.shape[0] != n):
        raise SourceError(f"{path}: {ds.name!r} has shape {ds.shape}; sample_varying={per_traj} with {n} trajectories")
    return ds[...].astype(np.float64).reshape(n if per_traj else 1, -1)


def _listed(g: h5py.Group, path: Path) -> list[str]:
    """The names a group's ``field_names`` attribute lists, checked against its members."""
    if "field_names" not in g.attrs:
        raise SourceError(f"{path}: missing attribute 'field_names' of {g.name!r}")
    names = _strs(g.attrs["field_names"])
    expect_keys(g, names, path)
    return names


def _flags(ds: h5py.Dataset, path: Path) -> tuple[bool, bool]:
    """(sample_varying, time_varying) of a field or scalar."""
    for attr in ("sample_varying", "time_varying"):
        if attr not in ds.attrs:
            raise SourceError(f"{path}: missing attribute {attr!r} of {ds.name!r}")
    return bool(ds.attrs["sample_varying"]), bool(ds.attrs["time_varying"])


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _strs(v: Any) -> list[str]:
    return [] if v is None else [_str(s) for s in np.atleast_1d(v)]
