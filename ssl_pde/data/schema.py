"""The HDF5 shard schema (schema_version 1), shared by the writers (``data_gen``) and every reader.

One file is one shard of one dataset and one split: ``<out_dir>/<dataset>/<split>/shard-<index:05d>.h5``, where
the dataset is a registry PDE (``ssl_pde.pdes.PDES``) or, for imported data, an external dataset.

=====================  ==============================  ==================================================
path                   shape, dtype                    meaning
=====================  ==============================  ==================================================
``/u``                 (N, T, C, X[, Y[, Z]]) float32  solution; attr ``dims`` = "n t c x" (or "n t c x y")
``/t``                 (N, T) float64                  time of every stored frame
``/x`` (``/y``, ...)   (N, X) float64                  grid coordinates, one per spatial dimension
``/params/<name>``     (N,) or (N, k) float64          sampled parameters; attrs ``description``, ``sampling``
``/seed``              (N,) int64                      per-trajectory seed (-1 for imported data: none)
``/diagnostics/<d>``   (N,) float32                    quality figures (``spectral_tail``, ``max_abs``, ...)
=====================  ==============================  ==================================================

Root attributes: ``schema_version``, ``pde``, ``split``, ``field_names``, ``param_names``,
``n_spatial_dims``, ``boundary``, ``generator_version``, ``config_yaml``, ``created_utc``,
``n_rejected`` and ``complete`` (set last; readers refuse a shard without it).

Imported data (``ssl-pde-import``) adds, all optional for a reader: root attributes ``dataset`` (the directory
name; equal to ``pde`` for a registry PDE), ``external``, ``source_format``, ``source_file``, ``source_sha256``,
``source_trajectories`` (the rows of the source file), ``import_notes`` (JSON: the source's quirks and how they
were handled) and ``params_unknown`` (registry parameters the source does not store: a registry shard may omit
exactly these); an ``origin`` attribute on every parameter; ``/source_index (N,) int64`` (row in the source
file); ``/constants/<name> (N, X[, Y], ...)`` (time-independent fields); ``/boundary_conditions/<name>``
(attrs ``bc_type``, ``associated_dims``, an optional ``mask``).

**External datasets.** A shard whose ``pde`` attribute is ``"external"`` holds a dataset that is not a registry
PDE (e.g. LPSDA's heat equation, a dataset of The Well): its name is the ``dataset`` attribute, its fields are
whatever ``field_names`` says and its spatial dimensions ``n_spatial_dims``; no parameter is required. Code keyed
on the registry (views, symmetries) never mistakes one for a registry PDE: ``PDES["external"]`` does not exist.
Every version-1 file written before this extension is valid as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ssl_pde.core.errors import UserError
from ssl_pde.pdes import PDES

SCHEMA_VERSION = 1
SPLITS = ("train", "valid", "test")
REQUIRED_ATTRS = (
    "schema_version",
    "pde",
    "split",
    "field_names",
    "param_names",
    "n_spatial_dims",
    "boundary",
    "generator_version",
    "config_yaml",
    "created_utc",
    "n_rejected",
    "complete",
)
SPATIAL_NAMES = ("x", "y", "z")
EXTERNAL = "external"  # the pde attribute of a shard holding an external (non-registry) dataset
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # an external dataset's name: one directory name


class SchemaError(UserError):
    """A file does not follow the schema (missing data, wrong version, incomplete)."""


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00003.h5``."""
    return f"shard-{index:05d}.h5"


def shard_path(out_dir: str | Path, pde: str, split: str, index: int) -> Path:
    """Path of shard ``index`` of ``pde``/``split`` under ``out_dir``."""
    return Path(out_dir) / pde / split / shard_name(index)


def list_shards(path: str | Path) -> list[Path]:
    """Every ``shard-*.h5`` file at or below ``path`` (a file is returned as itself), sorted."""
    p = Path(path)
    if p.is_file():
        return [p]
    return sorted(q for q in p.rglob("shard-*.h5") if q.is_file())


def _attr_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _attr_list(value: Any) -> list[str]:
    return [_attr_str(v) for v in np.atleast_1d(value)]


@dataclass
class ShardSummary:
    """What :func:`validate_shard` learned about a valid shard."""

    path: Path
    pde: str
    split: str
    n: int
    u_shape: tuple[int, ...]
    field_names: list[str]
    param_names: list[str]
    params: dict[str, np.ndarray]
    diagnostics: dict[str, np.ndarray]
    t_range: tuple[float, float]
    n_rejected: int
    attrs: dict[str, Any]
    dataset: str = ""  # directory name: the pde, or an external dataset's name
    external: bool = False


def validate_shard(path: str | Path, *, load_values: bool = True) -> ShardSummary:
    """Check one shard against schema version 1 and return its summary.

    Raises:
        SchemaError: naming the first violation found (missing file or dataset, wrong version,
            ``complete`` not set, inconsistent shapes or dtypes, unknown PDE).
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise SchemaError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        attrs = dict(f.attrs)
        missing = [a for a in REQUIRED_ATTRS if a not in attrs]
        if "schema_version" in missing:
            raise SchemaError(f"{path}: no schema_version attribute (not an ssl-pde shard)")
        version = int(attrs["schema_version"])
        if version != SCHEMA_VERSION:
            raise SchemaError(f"{path}: schema_version {version} is not supported (expected {SCHEMA_VERSION})")
        if "complete" in missing or not bool(attrs["complete"]):
            raise SchemaError(f"{path}: shard is incomplete (attribute complete is not set)")
        if missing:
            raise SchemaError(f"{path}: missing root attributes {missing}")
        split = _attr_str(attrs["split"])
        field_names = _attr_list(attrs["field_names"])
        param_names = _attr_list(attrs["param_names"])
        pde = _attr_str(attrs["pde"])
        dataset, nd, required = _layout(path, attrs, field_names)
        for name in ("u", "t", "seed", *SPATIAL_NAMES[:nd]):
            if name not in f:
                raise SchemaError(f"{path}: missing dataset /{name}")
        u = f["u"]
        if u.ndim != 3 + nd or u.dtype != np.float32:
            raise SchemaError(f"{path}: /u has shape {u.shape} dtype {u.dtype}; expected {3 + nd}-d float32")
        n, nt, nc = u.shape[:3]
        if nc != len(field_names):
            raise SchemaError(f"{path}: /u has {nc} channels but field_names has {len(field_names)}")
        expect = {"t": (n, nt), "seed": (n,)}
        for i, s in enumerate(SPATIAL_NAMES[:nd]):
            expect[s] = (n, u.shape[3 + i])
        for name, shape in expect.items():
            if f[name].shape != shape:
                raise SchemaError(f"{path}: /{name} has shape {f[name].shape}, expected {shape}")
        if f["seed"].dtype != np.int64:
            raise SchemaError(f"{path}: /seed has dtype {f['seed'].dtype}, expected int64")
        params: dict[str, np.ndarray] = {}
        for name in param_names:
            key = f"params/{name}"
            if key not in f:
                raise SchemaError(f"{path}: missing dataset /{key}")
            if f[key].shape[0] != n:
                raise SchemaError(f"{path}: /{key} has {f[key].shape[0]} rows, expected {n}")
            params[name] = f[key][...] if load_values else np.empty(0)
        missing_params = sorted(set(required) - set(param_names))
        if missing_params:
            raise SchemaError(f"{path}: parameters {missing_params} of {pde} are not stored")
        diagnostics = {}
        if "diagnostics" in f:
            for name, ds in f["diagnostics"].items():
                diagnostics[name] = ds[...] if load_values else np.empty(0)
        t = f["t"][...] if load_values else np.zeros(2)
        return ShardSummary(
            path=path,
            pde=pde,
            split=split,
            n=n,
            u_shape=tuple(u.shape),
            field_names=field_names,
            param_names=param_names,
            params=params,
            diagnostics=diagnostics,
            t_range=(float(np.min(t)), float(np.max(t))),
            n_rejected=int(attrs["n_rejected"]),
            attrs=attrs,
            dataset=dataset,
            external=pde == EXTERNAL,
        )


def _layout(path: Path, attrs: dict[str, Any], field_names: list[str]) -> tuple[str, int, list[str]]:
    """The dataset name, the number of spatial dimensions and the parameters a shard must store, from its root
    attributes: a registry PDE's spec, or for an external dataset its own ``dataset`` and ``n_spatial_dims``."""
    pde = _attr_str(attrs["pde"])
    if pde == EXTERNAL:
        dataset = _attr_str(attrs.get("dataset", ""))
        if not DATASET_NAME.fullmatch(dataset) or dataset == EXTERNAL:
            raise SchemaError(f"{path}: external shard without a valid dataset attribute (got {dataset!r})")
        nd = int(attrs["n_spatial_dims"])
        if not 1 <= nd <= len(SPATIAL_NAMES):
            raise SchemaError(f"{path}: n_spatial_dims {nd} is not in 1..{len(SPATIAL_NAMES)}")
        if not field_names or len(set(field_names)) != len(field_names):
            raise SchemaError(f"{path}: field_names {field_names} must be distinct names, at least one")
        return dataset, nd, []
    if pde not in PDES:
        raise SchemaError(f"{path}: unknown pde {pde!r}")
    spec = PDES[pde]
    if field_names != list(spec.field_names):
        raise SchemaError(f"{path}: field_names {field_names} != {list(spec.field_names)} for {pde}")
    dataset = _attr_str(attrs.get("dataset", pde))
    if dataset != pde:
        raise SchemaError(f"{path}: dataset {dataset!r} differs from pde {pde!r} (external data has pde 'external')")
    unknown = set(_attr_list(attrs["params_unknown"])) if "params_unknown" in attrs else set()
    return pde, spec.n_spatial_dims, [name for name in spec.param_names if name not in unknown]


def periodic_axes(path: str | Path) -> tuple[str, ...]:
    """The spatial axes (``"x"``, ``"y"``, ...) along which a valid shard's data are periodic.

    Read from ``/boundary_conditions/<name>`` when the shard has it (imported data: an axis is periodic when a
    condition of ``bc_type`` PERIODIC names it in ``associated_dims`` and no other condition names it), else from
    the root ``boundary`` attribute (generated data: ``periodic`` makes every axis periodic, ``closed_box`` none).
    """
    with h5py.File(path, "r") as f:
        nd = int(f.attrs["n_spatial_dims"])
        axes = SPATIAL_NAMES[:nd]
        if "boundary_conditions" not in f or not len(f["boundary_conditions"]):
            return axes if _attr_str(f.attrs["boundary"]).lower() == "periodic" else ()
        periodic, other = set(), set()
        for g in f["boundary_conditions"].values():
            dims = {d for v in _attr_list(g.attrs.get("associated_dims", "")) for d in v.split()}
            (periodic if _attr_str(g.attrs.get("bc_type", "")).upper() == "PERIODIC" else other).update(dims)
        return tuple(a for a in axes if a in periodic and a not in other)


def check_values(path: str | Path, rtol: float = 1e-5) -> int:
    """Check the values of a shard's ``/u``, one trajectory (one chunk) at a time; returns the count checked.

    Every value must be finite, and where the shard stores the ``max_abs`` diagnostic (max |u| over the
    stored frames, written by the generator) no trajectory may exceed its own entry (relative tolerance
    ``rtol``, for the float32 storage of both).

    Raises:
        SchemaError: naming the file, the trajectory index and what is wrong.
    """
    path = Path(path)
    with h5py.File(path, "r") as f:
        u = f["u"]
        limit = f["diagnostics/max_abs"][...].astype(np.float64) if "diagnostics/max_abs" in f else None
        for i in range(u.shape[0]):
            a = u[i]
            finite = np.isfinite(a)
            if not finite.all():
                raise SchemaError(f"{path}: trajectory {i}: {int((~finite).sum())} non-finite values in /u")
            if limit is not None:
                m = float(np.abs(a).max())
                if m > limit[i] * (1 + rtol) + 1e-30:
                    raise SchemaError(
                        f"{path}: trajectory {i}: max |u| = {m:.6g} exceeds its stored max_abs {limit[i]:.6g}"
                    )
        return int(u.shape[0])
