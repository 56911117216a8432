"""Writing imported trajectories as schema-v1 shards: streamed one trajectory at a time, atomically.

A shard holds rows ``i0:i1`` of one source file. It is written to a temporary file unique to the process
(:func:`data_gen.claims.temp_path`), ``complete`` set last, then renamed onto its final name, as generation does;
its ``generation_key`` hashes everything that determines its content (the source file's name and sha256, the
rows, the split, the importer revision), so a rerun skips it and a rewrite is bit-identical in every dataset and
attribute but ``created_utc``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from data_gen.claims import temp_path
from data_gen.importers.base import Mapped, SourceError, rows
from data_gen.writer import generator_version
from ssl_pde.core.errors import DataError
from ssl_pde.data.schema import EXTERNAL, SCHEMA_VERSION, SPATIAL_NAMES
from ssl_pde.pdes import PDES

IMPORTER_REVISION = 1  # bump when a mapping changes what a shard holds: old shards then count as other settings
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class ShardInfo:
    """What one shard is: its rows of a source file, its split and what identifies its content.

    Attributes:
        fmt: the source format (``lpsda``, ...).
        source: the source file.
        sha256: the source file's sha256.
        rows: (i0, i1), the rows of the source file it holds.
        split: train, valid or test.
        config_yaml: the command's resolved config.
    """

    fmt: str
    source: Path
    sha256: str
    rows: tuple[int, int]
    split: str
    config_yaml: str

    @property
    def key(self) -> str:
        """Hash of everything that determines the shard's content (not where it is written)."""
        blob = {
            "format": self.fmt,
            "source": self.source.name,
            "sha256": self.sha256,
            "rows": list(self.rows),
            "split": self.split,
            "revision": IMPORTER_REVISION,
        }
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def write_shard(path: Path, src: Mapped, info: ShardInfo) -> None:
    """Write rows ``info.rows`` of ``src`` to ``path``: a temporary file first, ``complete`` last, then a rename.

    Raises:
        SourceError: a trajectory whose shape differs from the file's coordinates.
        DataError: non-finite values (in the source, or from rounding to float32), naming file and trajectory.
    """
    tmp = temp_path(path)
    try:
        with h5py.File(tmp, "w") as f:
            max_abs = _write_fields(f, src, info)
            i0, i1 = info.rows
            f.create_dataset("t", data=rows(src.t, i0, i1))
            for name, grid in src.grid.items():
                f.create_dataset(name, data=rows(grid, i0, i1))
            f.create_dataset("seed", data=np.full(i1 - i0, -1, dtype=np.int64)).attrs["description"] = "none: imported"
            f.create_dataset("source_index", data=np.arange(i0, i1, dtype=np.int64))
            for name, p in src.params.items():
                ds = f.create_dataset(f"params/{name}", data=rows(p.values, i0, i1).astype(np.float64))
                ds.attrs.update(description=p.description, sampling=f"imported ({info.fmt})", origin=p.origin)
            for name, c in src.constants.items():
                first = c.read(i0)
                ds = f.create_dataset(f"constants/{name}", shape=(i1 - i0, *first.shape), dtype=first.dtype)
                for k, i in enumerate(range(i0, i1)):  # one trajectory at a time
                    ds[k] = first if k == 0 else c.read(i)
                ds.attrs.update(description=c.description, origin=c.origin)
            for b in src.boundaries:
                g = f.create_group(f"boundary_conditions/{b.name}")
                g.attrs.update(bc_type=b.bc_type, associated_dims=b.dims, origin=b.origin)
                if b.mask is not None:
                    g.create_dataset("mask", data=b.mask[i0:i1] if b.per_trajectory else b.mask)
            ds = f.create_dataset("diagnostics/max_abs", data=max_abs)
            ds.attrs["description"] = "max over stored frames, channels and points of |u| (as stored, float32)"
            _write_attrs(f, src, info)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_fields(f: h5py.File, src: Mapped, info: ShardInfo) -> np.ndarray:
    """``/u`` (n, T, C, X[, Y]) float32, one trajectory (one chunk) at a time; returns max |u| per trajectory (n,)."""
    i0, i1 = info.rows
    shape = (src.t.shape[1], len(src.field_names), *(g.shape[1] for g in src.grid.values()))
    u = f.create_dataset(
        "u", shape=(i1 - i0, *shape), dtype=np.float32, chunks=(1, *shape), compression="lzf", shuffle=True
    )
    u.attrs["dims"] = " ".join(["n", "t", "c", *SPATIAL_NAMES[: len(src.grid)]])
    max_abs = np.zeros(i1 - i0, dtype=np.float32)
    for k, i in enumerate(range(i0, i1)):
        a = src.trajectory(i)
        if a.shape != shape:
            raise SourceError(
                f"{info.source}: trajectory {i} has shape {a.shape}, expected {shape} from its coordinates"
            )
        if k == 0:
            u.attrs["source_dtype"] = str(a.dtype)
        with np.errstate(over="ignore"):
            a32 = a.astype(np.float32)
        finite = np.isfinite(a32)
        if not finite.all():
            raise DataError(f"{info.source}: trajectory {i}: {int((~finite).sum())} non-finite values as float32")
        u[k] = a32
        max_abs[k] = np.abs(a32).max()
    return max_abs


def _write_attrs(f: h5py.File, src: Mapped, info: ShardInfo) -> None:
    """Root attributes: the schema's, the provenance, the notes; ``complete`` last."""
    a = f.attrs
    a["schema_version"] = SCHEMA_VERSION
    a["pde"] = src.pde or EXTERNAL
    a["dataset"] = src.dataset
    a["external"] = src.pde is None
    a["split"] = info.split
    a["field_names"] = list(src.field_names)
    a["param_names"] = list(src.params)
    a["params_unknown"] = sorted(src.unknown) or np.array([], dtype=h5py.string_dtype())
    a["n_spatial_dims"] = len(src.grid)
    a["boundary"] = src.boundary
    a["equation"] = PDES[src.pde].equation if src.pde else src.equation
    a["generator_version"] = generator_version()
    a["config_yaml"] = info.config_yaml
    a["generation_key"] = info.key
    a["created_utc"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    a["n_rejected"] = 0
    a["rejection_reasons"] = "{}"
    a["source_format"] = info.fmt
    a["source_file"] = info.source.name
    a["source_sha256"] = info.sha256
    a["source_trajectories"] = np.array(info.rows, dtype=np.int64)
    unknown = {f"params_unknown: {k}": why for k, why in sorted(src.unknown.items())}
    a["import_notes"] = json.dumps({**src.notes, **unknown}, indent=1)
    a["complete"] = True
