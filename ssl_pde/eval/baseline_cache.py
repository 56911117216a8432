"""The supervised baseline trained once, reused by every evaluation of other encoders on the same cell.

The network from scratch (``supervised``) never reads the pretrained encoder: an evaluation of encoder B repeats,
cell by cell, the supervised training an evaluation of encoder A already did whenever everything that training
reads is the same (:func:`~ssl_pde.eval.protocol.cell_seed` derives its seed from the pretraining seed and the
label draw, not from the encoder's weights). In a study that evaluates many encoders under one protocol it is
most of the compute (about 70 % of a Burgers evaluation at 1000 steps). ``regression.baseline_cache=DIR`` keeps
each cell's trained network under ``DIR/supervised/<code version>/<key>.pt`` and restores it instead of training
again.

The key is a SHA-256 over everything the training reads (:meth:`BaselineCache.fields`):

- the bytes of the labelled set and of the valid split (inputs after any corruption or transfer, grids and
  targets: :func:`split_digest`), so other data, labels, corruption or extrapolation never hit;
- the network at its initialisation under the cell's seed (architecture and initial weights: :func:`init_digest`),
  the export's encoder settings with the class defaults filled in (:func:`encoder_settings`), the view builder
  used (:func:`views_fields`: symmetry strengths only when the network trains on symmetry views), the evaluation
  window and crops;
- the supervised search (learning rates, budget, early stopping, batch, views, head initialisation), the
  selection metric, the log target, BatchNorm re-estimation, the prediction clamp and the seed;
- the code that trains and scores it (``ssl_pde/eval``, ``models``, ``augment``, ``pdes``, ``metrics.py`` as
  syntax trees, taken when the cache is made: :func:`code_digest`; a change to the code retrains, comments and
  docstrings aside), the torch, NumPy and Python versions and the device type.

Entries live in ``DIR/supervised/<code version>/<key>.pt``. One is restored only when its recorded fields equal
the computed ones and the restored network reproduces its recorded valid score (:func:`fit_or_restore`); a
foreign, malformed, unreadable or altered entry is trained again and replaced, with a warning, and an entry that
cannot be written is a warning. Entries are written atomically (temporary file, then rename), so concurrent
evaluations of different cells share a directory safely; two evaluations of the same cell at once both train and
one write wins. Files are read with ``torch.load(weights_only=True)``: a shared cache holds tensors and plain
values and runs no code. What differs between a restored and a retrained network is only what the key leaves out
on purpose: the thread count and the machine (floating-point reductions may round differently; the chosen
network is the one trained then).
The restored cell records ``reused`` (the file) in its choices, and its ``seconds`` are the original training's.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import logging
import math
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra.utils
import numpy as np
import torch
from torch import nn

import ssl_pde
from ssl_pde.eval.data import Split
from ssl_pde.eval.regression import Fitted, restore_network, valid_loss
from ssl_pde.eval.train import Search

log = logging.getLogger("ssl_pde.eval")
Tensor = torch.Tensor

#: Version of the entry layout (part of every key).
CACHE_FORMAT = 1
#: Source trees (relative to the package) whose code trains, feeds or scores the supervised network.
CODE_PARTS = ("eval", "models", "augment", "pdes", "metrics.py")


def _update(h: Any, t: Tensor) -> None:
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, not a copy


def split_digest(s: Split) -> str:
    """SHA-256 of a split's arrays (every data array by name, the target and every loaded parameter)."""
    h = hashlib.sha256()
    for name, t in sorted({**{f"data.{k}": v for k, v in s.data.items()}, "y": s.y}.items()):
        h.update(name.encode())
        _update(h, t)
    for name, t in sorted(s.params.items()):
        h.update(f"params.{name}".encode())
        _update(h, t)
    return h.hexdigest()


def init_digest(init: Callable[[], nn.Module], seed: int) -> str:
    """SHA-256 of ``init()`` built under ``torch.manual_seed(seed)``: its module tree and every parameter and
    buffer (architecture and initial weights). The global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # the CPU generator init() draws from, and no other
        m = init()
    h = hashlib.sha256(repr(m).encode())
    for name, t in m.state_dict().items():
        h.update(name.encode())
        _update(h, t)
    return h.hexdigest()


def _code(source: str) -> str:
    """The code of a module without its comments, docstrings and layout (its syntax tree)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_digest(root: Path | None = None) -> str:
    """SHA-256 of the code (syntax trees: comments, docstrings and layout left out, so editing prose does not
    invalidate the cache) of the modules under :data:`CODE_PARTS` of the package at ``root`` (default: this one)."""
    base = Path(root or Path(ssl_pde.__file__).parent)
    files: list[Path] = []
    for part in CODE_PARTS:
        p = base / part
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(base)).encode())
        h.update(_code(f.read_text()).encode())
    return h.hexdigest()


def encoder_settings(export: dict[str, Any]) -> dict[str, Any]:
    """The export's encoder settings with its class's constructor defaults filled in, so that an export written
    before an option existed (no ``stem`` key) and a newer one with the option at its default key the same baseline.
    The class was checked against the allowed encoders when the export was loaded."""
    cfg = dict(export.get("encoder") or {})
    try:
        params = inspect.signature(hydra.utils.get_class(str(cfg["_target_"]))).parameters.values()
    except (KeyError, ImportError, ValueError, TypeError):
        return cfg
    return {**{p.name: p.default for p in params if p.default is not inspect.Parameter.empty}, **cfg}


def context_of(export: dict[str, Any], eval_window: str | None, eval_crops: list[int]) -> dict[str, Any]:
    """:attr:`BaselineCache.context` of an evaluation: the (first) export's encoder settings
    (:func:`encoder_settings`), the evaluation window and the evaluation crops (the views themselves are keyed by
    :func:`views_fields`)."""
    crops = [int(c) for c in eval_crops]
    return {"encoder": encoder_settings(export), "eval_window": eval_window, "eval_crops": crops}


def views_fields(views: Any, spec: Search) -> dict[str, Any]:
    """What of the view builder the supervised network's training and predictions read: its class and settings,
    without the symmetry generators' settings unless ``spec.views`` trains on symmetry views (``lie``): the crops
    (``crops``) and the evaluation inputs do not depend on them, so encoders pretrained with other view strengths
    share the baseline. Attributes bound from the data's metadata (``periodic``, ``data_fields``) are included."""
    v = views if "lie" in spec.views else views.without_symmetries()
    out: dict[str, Any] = {"class": f"{type(v).__module__}.{type(v).__qualname__}"}
    out["config"] = getattr(v, "_config", None)
    for name in ("periodic", "data_fields", "eval_window"):
        if hasattr(views, name):
            out[name] = getattr(views, name)
    out["eval_grid"] = list(getattr(views, "eval_grid", (1, 1)))
    return json.loads(json.dumps(out, sort_keys=True, default=str))


@dataclasses.dataclass(frozen=True)
class Training:
    """One cell's supervised training, as :func:`~ssl_pde.eval.regression.fit_network` receives it.

    Attributes:
        init: builds the fresh network (architecture and initialisation).
        views: the view builder (training crops, evaluation inputs).
        spec: the supervised search.
        lab, valid: the labelled set and the valid split.
        seed: the cell's seed (:func:`~ssl_pde.eval.protocol.cell_seed`).
        settings: the remaining plain settings: ``metric``, ``log_target``, ``recalibrate_bn``, ``clamp_margin``.
        device: where it trains.
    """

    init: Callable[[], nn.Module]
    views: Any
    spec: Search
    lab: Split
    valid: Split
    seed: int
    settings: dict[str, Any]
    device: torch.device


@dataclasses.dataclass
class BaselineCache:
    """Trained supervised networks by cell (module docstring).

    Attributes:
        root: the cache directory; entries under ``root/supervised/<code[:12]>/<key>.pt``, one folder per code
            version (an old version's folder can be deleted as a whole).
        context: JSON-able settings of the evaluation beyond what :meth:`fields` reads itself: the export's encoder
            settings, the evaluation window and crops (:func:`context_of`).
        code: :func:`code_digest`, taken when the cache is made (default), i.e. when the evaluation starts, so that a
            network is stored under the code that trained it even if the files change during a long run.
    """

    root: Path
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    code: str = ""
    _digests: dict[int, tuple[Split, str]] = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.code = self.code or code_digest()

    def digest(self, s: Split) -> str:
        """:func:`split_digest`, once per split object (a large valid split is hashed once per evaluation)."""
        hit = self._digests.get(id(s))
        if hit is None or hit[0] is not s:
            hit = self._digests[id(s)] = (s, split_digest(s))
        return hit[1]

    def fields(self, t: Training) -> dict[str, Any]:
        """Everything one cell's supervised training reads (the key's content)."""
        return {
            "format": CACHE_FORMAT,
            "code": self.code,
            "versions": {"torch": str(torch.__version__), "numpy": np.__version__, "python": platform.python_version()},
            "device": torch.device(t.device).type,
            "context": json.loads(json.dumps(self.context, sort_keys=True, default=str)),
            "views": views_fields(t.views, t.spec),
            "search": dataclasses.asdict(t.spec),
            "seed": int(t.seed),
            **{k: t.settings[k] for k in sorted(t.settings)},
            "labelled": self.digest(t.lab),
            "valid": self.digest(t.valid),
            "init": init_digest(t.init, t.seed),
        }

    @staticmethod
    def key(fields: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()

    def name(self, fields: dict[str, Any]) -> str:
        """The entry's path under ``root/supervised`` (recorded as ``reused`` by a restored cell)."""
        return f"{self.code[:12]}/{self.key(fields)}.pt"

    def path(self, fields: dict[str, Any]) -> Path:
        return self.root / "supervised" / self.name(fields)

    def load(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The stored entry (``record`` with ``valid`` and ``seconds``, ``state_dict``) of a cell with exactly these
        fields, or None (nothing stored, or an entry that is unreadable, malformed or stored for other fields:
        a warning, and the caller trains again)."""
        p = self.path(fields)
        if not p.exists():
            return None
        try:
            entry = torch.load(p, map_location="cpu", weights_only=True)
            if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
                raise ValueError("not an entry of this cache")
            if not isinstance(entry.get("state_dict"), dict) or not {"valid", "seconds"} <= set(entry["record"]):
                raise ValueError("an entry without its network or record")
        except Exception as e:  # whatever is wrong with the file, the cell is trained again
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            log.warning("baseline cache: %s unreadable (%s: %s); training again", p, type(e).__name__, first)
            return None
        stored = json.loads(json.dumps(entry.get("fields"), sort_keys=True, default=str))
        if stored != json.loads(json.dumps(fields, sort_keys=True, default=str)):
            log.warning("baseline cache: %s was stored for other settings; training again", p)
            return None
        return entry

    def store(self, fields: dict[str, Any], record: dict[str, Any], model: nn.Module) -> Path | None:
        """Write one cell's trained network and record atomically; returns the entry's path (None, with a warning,
        when it cannot be written: the evaluation goes on with the network it has)."""
        p = self.path(fields)
        tmp = None
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{p.stem[:16]}.", suffix=".tmp", dir=p.parent)
            os.close(fd)
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            plain = json.loads(json.dumps({"fields": fields, "record": record}, default=str))  # plain values only
            torch.save({**plain, "state_dict": state}, tmp)
            os.replace(tmp, p)
        except OSError as e:
            log.warning("baseline cache: could not store %s (%s); the evaluation goes on", p, e)
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
            return None
        return p


def fit_or_restore(cache: BaselineCache, train: Callable[[], Fitted], t: Training) -> Fitted:
    """The supervised network of one cell: restored from ``cache`` when it holds this cell, else ``train()`` and
    stored. A restored network must score on the valid split what its record says it scored when it was chosen
    (relative 1e-4: thread counts may round differently), or it is trained again with a warning: a stored entry
    is believed only if it reproduces its own choice."""
    fields = cache.fields(t)
    entry = cache.load(fields)
    if entry is not None:
        where = cache.path(fields)
        try:
            record = {**entry["record"], "reused": cache.name(fields)}
            log_target, margin = t.settings["log_target"], t.settings["clamp_margin"]
            fitted = restore_network(
                t.init,
                entry["state_dict"],
                record,
                views=t.views,
                lab=t.lab,
                log_target=log_target,
                device=t.device,
                clamp_margin=margin,
            )
            score = valid_loss(t.settings["metric"])(fitted.predict(t.valid), t.valid.y)
            if math.isclose(score, float(record["valid"]), rel_tol=1e-4, abs_tol=1e-12):
                return fitted
            log.warning(
                "baseline cache: %s scores %.6g on valid where its record says %.6g; training again",
                where,
                score,
                record["valid"],
            )
        except (RuntimeError, KeyError, TypeError, ValueError) as e:
            log.warning("baseline cache: %s cannot be restored (%s: %s); training again", where, type(e).__name__, e)
    fitted = train()
    if fitted.model is not None:
        cache.store(fields, fitted.choice, fitted.model)
    return fitted
