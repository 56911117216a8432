"""Shared command-line plumbing (part of the core both data_gen and the training code build on): one-line
errors with exit status 2, override and config-group checks, devices.

Every command reports bad input as ``error: <message naming the bad value>`` on stderr and exits with
status 2. Hydra's own composition errors (an unknown key, a bad override) are mapped to status 2 too;
anything else that goes wrong inside a command is a bug and keeps Hydra's traceback and status 1.
"""

from __future__ import annotations

import difflib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import hydra
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from ssl_pde import CONFIG_DIR
from ssl_pde.core.errors import UserError

log = logging.getLogger("ssl_pde")
__all__ = [
    "UserError",
    "check_group_choices",
    "check_overrides",
    "fail",
    "hydra_entry",
    "resolve_device",
    "run_hydra_app",
]


def fail(message: str) -> NoReturn:
    """Print ``error: message`` (one line) to stderr and exit with status 2."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    sys.exit(2)


def check_group_choices(argv: list[str], config_dir: Path = CONFIG_DIR) -> None:
    """Refuse ``group=option`` overrides naming an option that has no ``configs/<group>/<option>.yaml``.

    Sweeps (``pde=kdv,ks``) are checked value by value. Exits with status 2 on the first bad option.
    """
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        group_dir = config_dir / key
        if not group_dir.is_dir() or "." in key:
            continue
        options = sorted(p.stem for p in group_dir.glob("*.yaml"))
        for v in value.split(","):
            v = v.strip()
            if v and v != "null" and v not in options:
                fail(f"unknown {key} {v!r} (choose from: {', '.join(options)})")


def _keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a plain config container (``hydra`` and private ``_x_`` keys left out)."""
    out = []
    for k, v in node.items() if isinstance(node, dict) else ():
        if k == "hydra" or str(k).startswith("_"):
            continue
        out.append(f"{prefix}{k}")
        out += _keys(v, f"{prefix}{k}.")
    return out


def check_overrides(config_name: str, argv: list[str], config_dir: Path = CONFIG_DIR) -> None:
    """Compose ``config_name`` with the command-line overrides once, before Hydra runs, so that a misspelt key or
    a malformed override is one line naming it (with the closest keys), exit status 2.

    Multirun and flag invocations (``-m``, ``--cfg``, ``--help``) are left to Hydra.
    """
    if any(a.startswith("-") for a in argv):
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    overrides = [a for a in argv if "=" in a or a.startswith(("~", "+"))]
    with initialize_config_dir(str(config_dir), version_base="1.3"):
        try:
            compose(config_name, overrides)
            return
        except HydraException as e:
            error = e
        cause = error.__cause__
        if isinstance(cause, ConfigAttributeError | ConfigKeyError) and "not in struct" in str(cause):
            bad = next(a for a in overrides if f"'{a.partition('=')[0].lstrip('+~')}'" in str(error))
            key = bad.partition("=")[0]
            base = compose(config_name, [a for a in overrides if a != bad])
            keys = _keys(OmegaConf.to_container(base, resolve=False, throw_on_missing=False))
            close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(close)}?" if close else f"see ssl-pde-{config_name} --cfg job"
            fail(f"unknown setting {key!r} in {bad} ({hint})")
    lines = str(error).split("\n")
    lines = lines[: next((i for i, ln in enumerate(lines) if ln.startswith(("Config search path", "See "))), None)]
    fail("bad override: " + "; ".join(ln.strip() for ln in lines if ln.strip()))


def hydra_entry(
    config_name: str,
    task: Callable[[DictConfig], Any],
    on_interrupt: str = "interrupted",
) -> Callable[[], None]:
    """Console-script entry point running ``task`` as a Hydra application on ``configs/<config_name>.yaml``.

    ``UserError`` (and its subclasses: schema, data, configuration errors) ends as one line with exit status
    2, also when a constructor Hydra instantiates raises it (the cause of its InstantiationException); any
    other exception is a bug and keeps its traceback (exit 1); Ctrl-C prints
    ``on_interrupt`` and exits with 130; composition errors exit with 2 (:func:`run_hydra_app`).
    """
    started = [False]

    @hydra.main(config_path=str(CONFIG_DIR), config_name=config_name, version_base="1.3")
    def _main(cfg: DictConfig) -> None:
        started[0] = True
        try:
            task(cfg)
        except UserError as e:
            fail(str(e))
        except InstantiationException as e:  # a config value a constructor refused: that error, one line
            if isinstance(e.__cause__, UserError):
                fail(str(e.__cause__))
            raise
        except KeyboardInterrupt:
            print(on_interrupt, file=sys.stderr)
            sys.exit(130)

    def main() -> None:
        check_group_choices(sys.argv[1:])
        check_overrides(config_name, sys.argv[1:])
        run_hydra_app(_main, started)

    return main


def run_hydra_app(hydra_main: Callable[[], None], started: list[bool]) -> None:
    """Run a ``@hydra.main`` function with the project's exit-status rules.

    Args:
        hydra_main: the decorated function.
        started: a one-element list the task function sets to ``[True]`` on entry; a Hydra failure
            before that (composition, overrides) is the user's input and exits with status 2.
    """
    check_group_choices(sys.argv[1:])
    try:
        hydra_main()
    except SystemExit as e:
        if e.code not in (0, None) and not started[0]:
            sys.exit(2)
        raise


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``; other names are checked.

    Raises:
        UserError: an unknown device name or a CUDA device that is not there.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {device!r} (use cpu, cuda, cuda:N or auto)")
    return dev
