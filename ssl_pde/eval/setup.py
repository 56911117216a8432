"""Loading what an evaluation needs: exported encoders (one per pretraining seed), their views, the splits.

Encoder exports (``encoder.pt`` of ``ssl-pde-pretrain``) are read with ``torch.load(weights_only=True)``: a
file that pickles code is refused, not run. The encoder and view configs stored in an export are data too:
only the project's own classes named in :data:`ALLOWED_TARGETS` are built from them.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import torch
import yaml
from torch import nn

from ssl_pde.augment.corrupt import Corruption
from ssl_pde.augment.views import LieViews, crop_origins
from ssl_pde.core.errors import UserError
from ssl_pde.data.datasets import TrajectoryDataset
from ssl_pde.eval.data import Split
from ssl_pde.eval.transfer import Transfer, apply_transfer
from ssl_pde.pdes import PDES

#: The classes an export's ``encoder`` and ``augment`` configs may name.
ALLOWED_TARGETS = (
    "ssl_pde.models.encoders.ResNet18",
    "ssl_pde.augment.views.LieViews",
    "ssl_pde.augment.ns_views.NSViews",
    "ssl_pde.augment.generic_views.GenericViews",
)


def _nested_target(x: Any, where: str) -> str | None:
    """The location of any ``_target_`` key inside ``x`` (dicts and lists at any depth), or None."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "_target_" or (hit := _nested_target(v, f"{where}.{k}")):
                return f"{where}.{k}" if k == "_target_" else hit
    elif isinstance(x, list | tuple):
        for i, v in enumerate(x):
            if hit := _nested_target(v, f"{where}[{i}]"):
                return hit
    return None


def _build(cfg: dict[str, Any], what: str, path: Path) -> Any:
    """Build an allowed class from an export's stored config: the top-level ``_target_`` must be one of
    :data:`ALLOWED_TARGETS`, nothing below it may name anything to build, and Hydra does not recurse."""
    target = cfg.get("_target_")
    if target not in ALLOWED_TARGETS:
        raise UserError(f"{path}: {what} config names _target_={target!r}, not one of the project's classes")
    nested = _nested_target({k: v for k, v in cfg.items() if k != "_target_"}, what)
    if nested:
        raise UserError(f"{path}: {what} config nests an object to build at {nested}")
    return hydra.utils.instantiate(cfg, _convert_="all", _recursive_=False)


def load_encoder(path: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any], Callable[[], nn.Module]]:
    """Rebuild an exported encoder: (frozen encoder in eval mode, the export, a builder of fresh copies of its
    architecture)."""
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found")
    if not zipfile.is_zipfile(path):  # torch.save's format; text, empty and legacy files never reach an unpickler
        why = "an empty file" if path.stat().st_size == 0 else "not a torch zip file"
        raise UserError(f"{path} is not an encoder exported by ssl-pde-pretrain ({why})")
    try:
        exp = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's weights-only unpickler met something other than tensors and data
        raise UserError(
            f"{path} is not an encoder exported by ssl-pde-pretrain: it holds Python objects other than tensors "
            "and plain data, which are never loaded (they could run code)"
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError) as e:
        raise UserError(
            f"{path} is not an encoder exported by ssl-pde-pretrain (corrupt: {type(e).__name__})"
        ) from None
    if not isinstance(exp, dict) or not {"state_dict", "encoder", "augment", "pde"} <= set(exp):
        raise UserError(f"{path} is not an encoder exported by ssl-pde-pretrain (missing keys)")
    enc_cfg = dict(exp["encoder"])

    def fresh() -> nn.Module:
        return _build(enc_cfg, "encoder", path)

    enc = fresh()
    try:
        enc.load_state_dict(exp["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not fit the stored encoder config ({str(e).splitlines()[0]})") from None
    enc.requires_grad_(False)
    return enc.to(device).eval(), exp, fresh


def build_views(exp: dict[str, Any], path: Path, eval_window: str | None) -> Any:
    """The export's view builder (exports made before views named their class are 1D ``LieViews``)."""
    aug = dict(exp["augment"])
    if eval_window is not None:
        if not str(aug.get("_target_", "")).endswith("NSViews"):
            raise UserError(f"eval_window={eval_window} applies to ns2d encoders only ({exp['pde']} given)")
        aug["eval_window"] = eval_window
    if "_target_" not in aug:
        return LieViews(**aug)
    try:
        return _build(aug, "augment", path)
    except hydra.errors.InstantiationException as e:
        if isinstance(e.__cause__, UserError):
            raise UserError(str(e.__cause__)) from None
        raise


@dataclass
class EvalInputs:
    """Everything an evaluation reads: frozen encoders (one per pretraining seed), views, target and splits;
    ``corruption``: None for clean splits, else the levels, seed and per-split seeds they were corrupted with;
    ``transfer``: None for the usual splits, else the record of :func:`~ssl_pde.eval.transfer.apply_transfer`
    (the extrapolation threshold and the kept trajectories, the test split's new grid)."""

    device: torch.device
    ckpts: list[Path]
    encoders: list[nn.Module]
    exports: list[dict[str, Any]]
    fresh: Callable[[], nn.Module]
    views: Any
    pde: str
    dataset: str
    param: str
    log_target: bool
    splits: dict[str, Split]
    corruption: dict[str, Any] | None = None
    transfer: dict[str, Any] | None = None
    pretrain_seeds: list[int | None] = field(default_factory=list)

    def encoder_seeds(self) -> list[int] | None:
        """The encoders' pretraining seeds when every one is known and they are distinct (then each encoder's
        evaluation cells are seeded from its own seed), else None (seeded by position)."""
        seeds = self.pretrain_seeds
        if seeds and None not in seeds and len(set(seeds)) == len(seeds):
            return [int(s) for s in seeds]  # type: ignore[arg-type]
        return None


def check_eval_grid(views: Any, item_shape: tuple[int, ...]) -> None:
    """Refuse an ``eval_crops`` grid the views or a trajectory of shape (T, C, X) cannot make (one line)."""
    if not isinstance(views, LieViews) or len(item_shape) != 3:
        raise UserError(f"eval_crops={list(views.eval_grid)}: several evaluation crops apply to 1D views only")
    crop_origins(item_shape[0], item_shape[-1], views.crop_t, views.crop_x, views.eval_grid)


def pretrain_seed(path: Path, export: dict[str, Any]) -> int | None:
    """An encoder's pretraining seed: the export's ``seed``, or for exports made before it was stored, the
    ``seed`` of the pretraining run's ``config.yaml`` beside it; None when neither says."""
    seed = export.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    cfg = Path(path).parent / "config.yaml"
    if cfg.is_file():
        try:
            seed = yaml.safe_load(cfg.read_text()).get("seed")
        except (yaml.YAMLError, AttributeError, UnicodeDecodeError, OSError):
            return None
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    return None


def _setting(exp: dict[str, Any], key: str) -> Any:
    """An export's ``key``; the dataset of exports made before it was stored is their PDE's name."""
    return exp.get("dataset") or exp.get("pde") if key == "dataset" else exp.get(key)


def load_inputs(
    ckpts: Sequence[Path],
    data_dir: Path,
    device: torch.device,
    split_names: Sequence[str] = ("train", "valid", "test"),
    param: str | None = None,
    log_target: bool | None = None,
    eval_window: str | None = None,
    extra_params: Sequence[str] = (),
    corrupt: Corruption | None = None,
    transfer: Transfer | None = None,
    eval_crops: Sequence[int] = (1, 1),
) -> EvalInputs:
    """Load every encoder (they must share PDE, dataset, architecture and views: seeds of one pretraining setting)
    and the splits of their dataset under ``data_dir/<dataset>/`` (the PDE's name for exports made before the key
    existed), with the target, the PDE's ``dynamics_params`` and ``extra_params`` loaded into each split's
    ``params``; each split is checked against the views (:meth:`~ssl_pde.augment.base.SymmetryViews.check_dataset`).

    ``corrupt`` (not clean): every split is given messy observations (:meth:`Split.corrupted`), each with its own
    seed, :meth:`~ssl_pde.augment.corrupt.Corruption.split_seed` of the split's name (so train, valid and test
    draw independently, and a split's draws do not depend on which other splits are read); recorded in
    :attr:`EvalInputs.corruption`.

    ``eval_crops`` (``[n_t, n_x]``): the evaluation crops per trajectory whose results every method averages
    (:meth:`~ssl_pde.augment.views.LieViews.eval_views`); checked against each split's grid.

    ``transfer`` (not plain): after any corruption, the splits are restricted for extrapolation and the test split
    is put on another grid (:func:`~ssl_pde.eval.transfer.apply_transfer`); recorded in
    :attr:`EvalInputs.transfer`. A grid change together with a corruption is refused: the resampling would change
    the corruption's meaning (coarsening filters part of the noise out)."""
    if not ckpts:
        raise UserError("ckpt is empty: give an encoder.pt or a list of them (one per pretraining seed)")
    loaded = [load_encoder(Path(c), device) for c in ckpts]
    exp0 = loaded[0][1]
    for (_, exp, _), c in zip(loaded[1:], ckpts[1:], strict=True):
        for key in ("pde", "dataset", "encoder", "augment"):
            if _setting(exp, key) != _setting(exp0, key):
                raise UserError(f"{c}: its {key} differs from {ckpts[0]}'s; pass encoders of one setting only")
    pde = str(exp0["pde"])
    dataset = str(exp0.get("dataset") or pde)
    param = param or exp0.get("probe_param")
    if not param:
        raise UserError(f"{ckpts[0]} names no probe parameter: set param= (one the data store per trajectory)")
    log_target = bool(exp0.get("probe_log", False)) if log_target is None else bool(log_target)
    views = build_views(exp0, Path(ckpts[0]), eval_window)
    if len(eval_crops) != 2:
        raise UserError(f"eval_crops={list(eval_crops)}: give [crops in time, crops in space]")
    views.eval_grid = (int(eval_crops[0]), int(eval_crops[1]))
    dyn = PDES[pde].dynamics_params if pde in PDES else ()
    names = list(dict.fromkeys([param, *dyn, *extra_params]))
    root = Path(data_dir) / dataset
    messy = corrupt is not None and not corrupt.is_clean
    moved = transfer is not None and not transfer.is_plain
    if messy and moved and transfer.resolution is not None:
        levels = " ".join(f"{k}={v:g}" for k, v in corrupt.record().items() if k != "seed" and v > 0)
        raise UserError(
            f"transfer.resolution={transfer.resolution:g} with corrupt {levels}: a grid change of corrupted data "
            "changes the corruption (coarsening filters noise out); evaluate one at a time"
        )
    if moved and transfer.resolution is not None and tuple(views.eval_grid) != (1, 1):
        raise UserError(
            f"transfer.resolution={transfer.resolution:g} with eval_crops={list(views.eval_grid)}: the crops would "
            "cover another part of the domain on the new grid; evaluate one at a time"
        )
    record = {**corrupt.record(), "split_seeds": {}} if messy else None
    splits = {}
    dims, periodic = 1, True
    for s in split_names:
        ds = TrajectoryDataset(root / s, names, preload=True)
        views.check_dataset(ds)
        if tuple(views.eval_grid) != (1, 1):
            check_eval_grid(views, tuple(ds.item_shape))
        dims, periodic = ds.n_spatial_dims, "x" in ds.periodic_axes
        if moved:
            transfer.test_points(int(ds.item_shape[-1]), dims, periodic)  # resolution: 1D periodic data only
        if messy:
            corrupt.check_dims(ds.n_spatial_dims)  # drop_x: 1D only
        splits[s] = Split.load(ds, param)
        if messy:
            seed = corrupt.split_seed(s)
            splits[s] = splits[s].corrupted(corrupt, seed, periodic="x" in ds.periodic_axes)
            record["split_seeds"][s] = seed
    moved_record = None
    if moved:
        splits, moved_record = apply_transfer(splits, transfer, param, dims, periodic, check_crop=views.check_data)
    return EvalInputs(
        device=device,
        ckpts=[Path(c) for c in ckpts],
        encoders=[e for e, _, _ in loaded],
        exports=[x for _, x, _ in loaded],
        fresh=loaded[0][2],
        views=views,
        pde=pde,
        dataset=dataset,
        param=param,
        log_target=log_target,
        splits=splits,
        corruption=record,
        transfer=moved_record,
        pretrain_seeds=[pretrain_seed(Path(c), x) for c, (_, x, _) in zip(ckpts, loaded, strict=True)],
    )
