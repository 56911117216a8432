"""What every importer returns, and the layout checks they share.

An importer turns one open source file into a :class:`Mapped`: the metadata of its trajectories in memory
(coordinates, parameters, boundary conditions, notes on the source's quirks) and a reader of its fields, one
trajectory at a time. Arrays of per-file quantities keep a leading axis of length 1 (a value stored once per
file); the shard writer broadcasts them to the trajectories it writes (:func:`rows`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ssl_pde.core.errors import UserError
from ssl_pde.data.schema import SPLITS
from ssl_pde.pdes import PDES


class SourceError(UserError):
    """A source file that cannot be mapped onto the schema; the message names the file and the key."""


@dataclass(frozen=True)
class Param:
    """One stored parameter.

    Attributes:
        values: (N, ...) or (1, ...) float64 (stored once per file: broadcast to every trajectory).
        description: what it is.
        origin: where in the source it comes from (and how it was derived or broadcast).
    """

    values: np.ndarray
    description: str
    origin: str


@dataclass(frozen=True)
class Constant:
    """A time-independent field (e.g. The Well's ``t0_fields`` without ``time_varying``).

    Attributes:
        read: trajectory index -> its values (X[, Y], ...), in the source's dtype.
        description: what it is.
        origin: where in the source it comes from.
    """

    read: Callable[[int], np.ndarray]
    description: str
    origin: str


@dataclass(frozen=True)
class Boundary:
    """One boundary condition, stored under ``/boundary_conditions/<name>``.

    Attributes:
        name: group name.
        bc_type: ``PERIODIC``, ``WALL``, ``OPEN``, ... (The Well's spelling).
        dims: the spatial dimensions it applies to, e.g. ``"x"`` or ``"x y"``.
        origin: where it is stated (or why it is known when the source does not store it).
        mask: the source's mask (X,) or (N, X) bool, or None.
        per_trajectory: whether the mask has a leading trajectory axis.
    """

    name: str
    bc_type: str
    dims: str
    origin: str
    mask: np.ndarray | None = None
    per_trajectory: bool = False


@dataclass
class Mapped:
    """One source file mapped onto the schema.

    Attributes:
        dataset: directory name under ``out_dir``: the registry PDE, or an external dataset's name.
        pde: the registry PDE (``ssl_pde.pdes.PDES``), or None for an external dataset.
        split: the split the source states (a group or directory name), or None.
        n: trajectories in the file (N).
        field_names: channel names (C).
        trajectory: index -> fields (T, C, X[, Y[, Z]]) in the source's dtype, read from the file.
        t: frame times (N, T) or (1, T) float64.
        grid: spatial coordinates by schema name, ``{"x": (N, X) or (1, X), ...}`` float64.
        params: stored parameters by name.
        boundary: the root ``boundary`` attribute (``periodic``, ``closed_box``, ...).
        boundaries: boundary conditions.
        equation: the equation in plain text (registry PDEs: the spec's).
        unknown: registry parameters the source does not store -> why.
        constants: time-independent fields by name.
        notes: the source's quirks and how they were handled (stored as the JSON attribute ``import_notes``).
    """

    dataset: str
    pde: str | None
    split: str | None
    n: int
    field_names: tuple[str, ...]
    trajectory: Callable[[int], np.ndarray]
    t: np.ndarray
    grid: dict[str, np.ndarray]
    params: dict[str, Param]
    boundary: str
    boundaries: list[Boundary] = field(default_factory=list)
    equation: str = ""
    unknown: dict[str, str] = field(default_factory=dict)
    constants: dict[str, Constant] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def periodic_1d(u: h5py.Dataset, bc_origin: str, **fields) -> Mapped:
    """A 1D periodic source whose one field ``u`` is the dataset ``u`` (N, T, X), read as (T, 1, X) per trajectory.

    Args:
        u: the solution dataset.
        bc_origin: why the boundary is known to be periodic (neither 1D format stores it).
        fields: the other :class:`Mapped` fields.
    """
    return Mapped(
        field_names=("u",),
        trajectory=lambda i: u[i][:, None, :],
        boundary="periodic",
        boundaries=[Boundary("x_periodic", "PERIODIC", "x", bc_origin)],
        **fields,
    )


def rows(a: np.ndarray, i0: int, i1: int) -> np.ndarray:
    """Rows ``i0:i1`` of a per-trajectory array (N, ...), or a per-file array (1, ...) repeated to (i1 - i0, ...)."""
    if a.shape[0] == 1:
        return np.repeat(a, i1 - i0, axis=0)
    return a[i0:i1]


def need(group: h5py.Group, key: str, path: Path) -> h5py.Dataset | h5py.Group:
    """``group[key]``, or a :class:`SourceError` naming the file and the missing key."""
    if key not in group:
        raise SourceError(f"{path}: missing key {_name(group, key)!r}")
    return group[key]


def expect_keys(group: h5py.Group, expected: Iterable[str], path: Path) -> None:
    """Refuse a group whose members are not exactly ``expected``, naming the first unexpected or missing key."""
    expected = list(expected)
    for key in group:
        if key not in expected:
            raise SourceError(f"{path}: unexpected key {_name(group, key)!r} (expected {sorted(expected)})")
    for key in expected:
        need(group, key, path)


def split_group(f: h5py.File, path: Path) -> str:
    """The one top-level group of an LPSDA or PDEArena file, named after its split (train, valid or test)."""
    keys = list(f)
    for key in keys:
        if key not in SPLITS:
            raise SourceError(f"{path}: unexpected key {'/' + key!r} (expected one group named train, valid or test)")
    if len(keys) != 1:
        raise SourceError(f"{path}: {len(keys)} split groups {keys}; expected exactly one of train, valid, test")
    return keys[0]


def array(group: h5py.Group, key: str, shape: tuple[int, ...], path: Path) -> np.ndarray:
    """A small dataset read whole as float64 (coordinates, parameters), its shape checked against ``shape``."""
    ds = need(group, key, path)
    if not isinstance(ds, h5py.Dataset) or ds.shape != shape:
        got = ds.shape if isinstance(ds, h5py.Dataset) else "a group"
        raise SourceError(f"{path}: {_name(group, key)!r} has shape {got}, expected {shape}")
    return ds[...].astype(np.float64)


def field_shape(ds: h5py.Dataset, key: str, ndim: int, path: Path) -> tuple[int, ...]:
    """Shape of a field dataset that must have ``ndim`` axes and be floating point."""
    if not isinstance(ds, h5py.Dataset) or ds.ndim != ndim or ds.dtype.kind != "f":
        got = f"shape {ds.shape} dtype {ds.dtype}" if isinstance(ds, h5py.Dataset) else "a group"
        raise SourceError(f"{path}: {key!r} is {got}; expected a {ndim}-d floating-point array")
    return ds.shape


def spacing_note(t: np.ndarray, dt: np.ndarray) -> str:
    """Whether the spacing of the frame times t (N, T) agrees with the stored frame interval dt (N,)."""
    step = np.diff(t, axis=1)
    gap = float(np.max(np.abs(step - dt[:, None]))) if step.size else 0.0
    if gap <= 1e-9 * max(float(np.max(np.abs(t))), 1.0):
        return "the spacing of t equals the stored dt"
    return (
        f"the spacing of t ({float(step.min()):.6g} .. {float(step.max()):.6g}) disagrees with the stored dt "
        f"({float(dt.min()):.6g} .. {float(dt.max()):.6g}); both are kept: /t as given, params/dt"
    )


def registry_unknown(pde: str, stored: Iterable[str], why: str) -> dict[str, str]:
    """The registry parameters of ``pde`` not in ``stored``, each with the reason ``why``."""
    stored = set(stored)
    return {name: why for name in PDES[pde].param_names if name not in stored}


def registry_param(pde: str, name: str, values: np.ndarray, origin: str) -> Param:
    """A parameter of a registry PDE, described as the registry describes it."""
    return Param(values, PDES[pde].params_doc.get(name, name), origin)


def _name(group: h5py.Group, key: str) -> str:
    return f"{group.name.rstrip('/')}/{key}"
