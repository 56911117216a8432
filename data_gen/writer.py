"""Shard writer: deterministic seeds, rejection and replacement of bad trajectories, atomic writes, resume.

Seeds: trajectory slot ``i`` of shard ``s`` of split ``split`` under base seed ``b`` gets
``SeedSequence([b, SPLIT_ID[split], s, i]).generate_state(1, uint64) >> 1``; replacements for rejected
trajectories continue the index past the shard size. Shards can therefore be made on any machine, in
any order, and a rerun with the same settings is bit-identical on the same device type and execution path;
the execution settings left out of the key (:data:`EXECUTION_KEYS`: ns2d's compiled step, its projection's
transforms) and the batch size change the result only at round-off level.

Atomicity: a shard is written to a temporary file beside its final name, unique to the writing process
(``shard-NNNNN.h5.tmp.<host>.<pid>``), and renamed when complete (``complete`` is the last attribute
written), so an interrupted run never leaves a file that looks complete. Concurrent runs coordinate through
per-shard claims (:mod:`data_gen.claims`); the holder of a shard's claim deletes that shard's stale
temporaries and writes it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from data_gen.claims import temp_path
from data_gen.solvers.base import GeneratedBatch, TrajectoryGenerator
from ssl_pde import __version__
from ssl_pde.core.errors import UserError
from ssl_pde.data.schema import SCHEMA_VERSION, SPLITS, SchemaError, validate_shard

log = logging.getLogger(__name__)

SPLIT_ID = {name: i for i, name in enumerate(SPLITS)}


class GenerationError(UserError):
    """Generation cannot produce valid data with these settings (too many rejected trajectories)."""


def trajectory_seed(base_seed: int, split: str, shard: int, index: int) -> int:
    """The seed of trajectory slot (or replacement) ``index`` of a shard, as a non-negative int64."""
    state = np.random.SeedSequence([base_seed, SPLIT_ID[split], shard, index]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


def generator_version() -> str:
    """Package version plus the git commit of the source tree when available."""
    head = Path(__file__).resolve().parents[1] / ".git"
    sha = ""
    try:
        ref = (head / "HEAD").read_text().strip()
        if ref.startswith("ref: "):
            ref_path = head / ref[5:]
            sha = ref_path.read_text().strip() if ref_path.exists() else ""
        else:
            sha = ref
    except OSError:
        pass
    return f"{__version__}+{sha[:12]}" if sha else __version__


@dataclass
class ShardPlan:
    """What one shard holds: its index, the trajectory count and the key of its settings."""

    index: int
    n: int
    key: str


#: Solver settings that choose how a result is computed, not what it is (like the batch size or the device):
#: left out of :func:`generation_key`, so switching them neither invalidates nor mixes existing shards.
EXECUTION_KEYS = frozenset({"compile", "poisson_method"})
#: Solver settings added after shards existed, with the value that reproduces the earlier behaviour: at that value
#: they are left out of :func:`generation_key`, so directories written before the setting existed still resume.
LATER_KEYS = {"advection_dtype": "float64"}


def generation_key(solver_cfg: dict, base_seed: int, split: str, index: int, n: int) -> str:
    """Hash of everything that determines a shard's content (not the batch size, the device,
    :data:`EXECUTION_KEYS`, or a :data:`LATER_KEYS` setting at its earlier behaviour)."""
    solver = {
        k: v for k, v in solver_cfg.items() if k not in EXECUTION_KEYS and not (k in LATER_KEYS and v == LATER_KEYS[k])
    }
    blob = json.dumps(
        {"solver": solver, "seed": base_seed, "split": split, "index": index, "n": n}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_shards(num_samples: int, shard_size: int, solver_cfg: dict, base_seed: int, split: str) -> list[ShardPlan]:
    """Split ``num_samples`` trajectories into shards of ``shard_size`` (the last may be smaller)."""
    n_shards = math.ceil(num_samples / shard_size)
    plans = []
    for s in range(n_shards):
        n = min(shard_size, num_samples - s * shard_size)
        plans.append(ShardPlan(s, n, generation_key(solver_cfg, base_seed, split, s, n)))
    return plans


def generate_shard_data(
    gen: TrajectoryGenerator,
    base_seed: int,
    split: str,
    shard: int,
    n: int,
    batch_size: int,
    device: torch.device | str,
    max_reject_fraction: float,
    progress: Callable[[float], None] | None = None,
) -> tuple[GeneratedBatch, np.ndarray, Counter]:
    """Generate the ``n`` trajectories of one shard, replacing rejected ones from the seed stream.

    Returns:
        The accepted trajectories in slot order, their seeds (n,) int64, and a counter of rejection
        reasons.

    Raises:
        GenerationError: more than ``max(1, max_reject_fraction * n)`` trajectories were rejected.
    """
    max_rejects = max(1, math.floor(max_reject_fraction * n))
    accepted: list[GeneratedBatch] = []
    accepted_seeds: list[np.ndarray] = []
    reasons: Counter = Counter()
    next_index, filled = 0, 0
    while filled < n:
        want = min(batch_size, n - filled)
        seeds = np.array([trajectory_seed(base_seed, split, shard, next_index + i) for i in range(want)], np.int64)
        next_index += want
        total_steps = gen.total_steps(seeds[:1])
        cb = None
        if progress is not None:

            def cb(steps: int, _w: int = want, _t: int = max(total_steps, 1)) -> None:
                progress(_w * steps / _t)

        batch = gen.generate(seeds, device, cb)
        keep = np.flatnonzero(batch.ok)
        for i in np.flatnonzero(~batch.ok):
            reasons[batch.reasons[i].split(":")[0]] += 1
            log.warning("rejected trajectory seed %d: %s", seeds[i], batch.reasons[i])
        if sum(reasons.values()) > max_rejects:
            worst = [batch.reasons[i] for i in np.flatnonzero(~batch.ok)][:1]
            raise GenerationError(
                f"{sum(reasons.values())} trajectories of shard {shard} rejected (limit {max_rejects}), "
                f"e.g. {worst[0] if worst else reasons.most_common(1)}; refine solver.solver_nx or solver.dt_max, "
                f"or narrow the parameter ranges"
            )
        accepted.append(_select(batch, keep))
        accepted_seeds.append(seeds[keep])
        filled += len(keep)
    out = _concat(accepted)
    return out, np.concatenate(accepted_seeds), reasons


def _select(b: GeneratedBatch, idx: np.ndarray) -> GeneratedBatch:
    return GeneratedBatch(
        u=b.u[idx],
        t=b.t[idx],
        x=b.x[idx],
        params={k: v[idx] for k, v in b.params.items()},
        diagnostics={k: v[idx] for k, v in b.diagnostics.items()},
        ok=b.ok[idx],
        reasons=[b.reasons[i] for i in idx],
        y=None if b.y is None else b.y[idx],
    )


def _concat(bs: list[GeneratedBatch]) -> GeneratedBatch:
    return GeneratedBatch(
        u=np.concatenate([b.u for b in bs]),
        t=np.concatenate([b.t for b in bs]),
        x=np.concatenate([b.x for b in bs]),
        params={k: np.concatenate([b.params[k] for b in bs]) for k in bs[0].params},
        diagnostics={k: np.concatenate([b.diagnostics[k] for b in bs]) for k in bs[0].diagnostics},
        ok=np.concatenate([b.ok for b in bs]),
        reasons=[r for b in bs for r in b.reasons],
        y=None if bs[0].y is None else np.concatenate([b.y for b in bs]),
    )


def write_shard(
    path: Path,
    data: GeneratedBatch,
    seeds: np.ndarray,
    gen: TrajectoryGenerator,
    split: str,
    key: str,
    config_yaml: str,
    rejections: Counter,
) -> None:
    """Write one complete shard atomically: a temporary file unique to this process first, ``complete`` last,
    then an atomic rename onto ``path``."""
    spec = gen.spec
    tmp = temp_path(path)
    sampling = gen.sampling_doc()
    dims = "n t c x y" if data.u.ndim == 5 else "n t c x"
    if (data.y is not None) != (data.u.ndim == 5):
        raise ValueError(f"u has {data.u.ndim} dims but the y grid is {'missing' if data.y is None else 'given'}")
    try:
        with h5py.File(tmp, "w") as f:
            # one trajectory per chunk
            u = f.create_dataset("u", data=data.u, chunks=(1, *data.u.shape[1:]), compression="lzf", shuffle=True)
            u.attrs["dims"] = dims
            f.create_dataset("t", data=data.t.astype(np.float64))
            f.create_dataset("x", data=data.x.astype(np.float64))
            if data.y is not None:
                f.create_dataset("y", data=data.y.astype(np.float64))
            f.create_dataset("seed", data=seeds.astype(np.int64))
            for name in spec.param_names:
                ds = f.create_dataset(f"params/{name}", data=data.params[name].astype(np.float64))
                ds.attrs["description"] = spec.params_doc.get(name, name)
                ds.attrs["sampling"] = sampling.get(name, "")
            diag_doc = gen.diagnostics_doc()
            for name, v in data.diagnostics.items():
                ds = f.create_dataset(f"diagnostics/{name}", data=v.astype(np.float32))
                ds.attrs["description"] = diag_doc.get(name, name)
            a = f.attrs
            a["schema_version"] = SCHEMA_VERSION
            a["pde"] = spec.name
            a["split"] = split
            a["field_names"] = list(spec.field_names)
            a["param_names"] = list(spec.param_names)
            a["n_spatial_dims"] = spec.n_spatial_dims
            a["boundary"] = spec.boundary
            a["equation"] = spec.equation
            a["generator_version"] = generator_version()
            a["config_yaml"] = config_yaml
            a["generation_key"] = key
            a["created_utc"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
            a["n_rejected"] = int(sum(rejections.values()))
            a["rejection_reasons"] = json.dumps(dict(rejections))
            a["solver"] = gen.solver_description
            a["complete"] = True
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def existing_shard_status(path: Path, key: str) -> str:
    """``"missing"``, ``"done"`` (valid, same settings) or ``"different"`` (valid, other settings)."""
    if not path.exists():
        return "missing"
    try:
        summary = validate_shard(path, load_values=False)
    except SchemaError:
        return "invalid"
    return "done" if summary.attrs.get("generation_key") == key else "different"
