"""The supervised baseline trained once, reused by every evaluation of other encoders on the same cell.

The network from scratch (``supervised``) never reads the pretrained encoder: an evaluation of encoder B repeats,
cell by cell, the supervised training an evaluation of encoder A already did whenever everything that training
reads is the same (:func:`~ssl_pde.eval.protocol.cell_seed` derives its seed from the pretraining seed and the
label draw, not from the encoder's weights). In a study that evaluates many encoders under one protocol it is
most of the compute (about 70 % of a Burgers evaluation at 1000 steps). ``regression.baseline_cache=DIR`` keeps
each cell's trained network under ``DIR/supervised/<key>.pt`` and restores it instead of training again.

The key is a SHA-256 over everything the training reads (:meth:`BaselineCache.fields`):

- the bytes of the labelled set and of the valid split (inputs after any corruption or transfer, grids and
  targets: :func:`split_digest`), so other data, labels, corruption or extrapolation never hit;
- the network at its initialisation under the cell's seed (architecture and initial weights: :func:`init_digest`)
  and the export's encoder and view settings, evaluation window and evaluation crops;
- the supervised search (learning rates, budget, early stopping, batch, views, head initialisation), the
  selection metric, the log target, BatchNorm re-estimation, the prediction clamp and the seed;
- the source of the code that trains and scores it (``ssl_pde/eval``, ``models``, ``augment``, ``pdes``,
  ``metrics.py``: :func:`code_digest`; any change to the code there retrains, comments and docstrings aside),
  torch's version and the device type.

A stored entry is restored only when its recorded fields equal the computed ones (a hash collision or a file
from elsewhere is retrained and replaced, with a warning); a file that cannot be read likewise. Entries are
written atomically (temporary file, then rename), so concurrent evaluations of different cells share a
directory safely; two evaluations of the same cell at once both train and one write wins. Files are read with
``torch.load(weights_only=True)``: a shared cache holds tensors and plain values and runs no code. What differs
between a restored and a retrained network is only what the key leaves out on purpose: the thread count and
the machine (floating-point reductions may round differently; the chosen network is the one trained then).
The restored cell records ``reused`` (the file) in its choices, and its ``seconds`` are the original training's.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import ssl_pde
from ssl_pde.eval.data import Split
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
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


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
        torch.manual_seed(seed)
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


def context_of(export: dict[str, Any], eval_window: str | None, eval_crops: list[int]) -> dict[str, Any]:
    """:attr:`BaselineCache.context` of an evaluation: the (first) export's encoder and view settings, the
    evaluation window and the evaluation crops."""
    return {
        "encoder": export.get("encoder"),
        "augment": export.get("augment"),
        "eval_window": eval_window,
        "eval_crops": [int(c) for c in eval_crops],
    }


@dataclasses.dataclass
class BaselineCache:
    """Trained supervised networks by cell (module docstring).

    Attributes:
        root: the cache directory (entries under ``root/supervised/``).
        context: JSON-able settings of the evaluation that shape the network and its inputs beyond what
            :meth:`fields` sees directly: the export's ``encoder`` and ``augment`` settings, the evaluation window
            and the evaluation crops (:func:`context_of`).
    """

    root: Path
    context: dict[str, Any]
    _code: str | None = dataclasses.field(default=None, repr=False)

    def fields(
        self,
        init: Callable[[], nn.Module],
        spec: Search,
        lab: Split,
        valid: Split,
        seed: int,
        settings: dict[str, Any],
        device: torch.device,
    ) -> dict[str, Any]:
        """Everything the supervised training of one cell reads (the key's content). ``settings``: the
        remaining plain settings (``metric``, ``log_target``, ``recalibrate_bn``, ``clamp_margin``)."""
        if self._code is None:
            self._code = code_digest()
        return {
            "format": CACHE_FORMAT,
            "code": self._code,
            "torch": str(torch.__version__),
            "device": torch.device(device).type,
            "context": self.context,
            "search": dataclasses.asdict(spec),
            "seed": int(seed),
            **{k: settings[k] for k in sorted(settings)},
            "labelled": split_digest(lab),
            "valid": split_digest(valid),
            "init": init_digest(init, seed),
        }

    @staticmethod
    def key(fields: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()

    def path(self, fields: dict[str, Any]) -> Path:
        return self.root / "supervised" / f"{self.key(fields)}.pt"

    def load(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The stored entry (``record``, ``state_dict``) of a cell with exactly these fields, or None."""
        p = self.path(fields)
        if not p.exists():
            return None
        try:
            entry = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # an unreadable entry is retrained and replaced
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            log.warning("baseline cache: %s unreadable (%s: %s); training again", p, type(e).__name__, first)
            return None
        stored = json.loads(json.dumps(entry.get("fields"), default=str))
        if stored != json.loads(json.dumps(fields, default=str)):
            log.warning("baseline cache: %s was stored for other settings; training again", p)
            return None
        return entry

    def store(self, fields: dict[str, Any], record: dict[str, Any], model: nn.Module) -> Path:
        """Write one cell's trained network and record atomically; returns the entry's path."""
        p = self.path(fields)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        plain = json.loads(json.dumps({"fields": fields, "record": record}, default=str))  # plain values only
        torch.save({**plain, "state_dict": state}, tmp)
        os.replace(tmp, p)
        return p
