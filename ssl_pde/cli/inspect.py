"""``ssl-pde-inspect PATH``: validate shards against the schema and summarise them.

PATH is a shard file or a directory searched recursively for ``shard-*.h5``. Prints, per dataset (a registry
PDE or an imported external dataset) and split, the trajectory count, the shape of ``/u``, its channels, the periodic
axes (what an external dataset's views translate along), the time range, every parameter's range and every
diagnostic's range (and, for imported data, the source format and files). Values
are checked too, one trajectory at a time: every value of ``/u`` finite and within the trajectory's stored
``max_abs`` diagnostic. Exits with status 2 and a one-line message naming the first invalid file (and
trajectory).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ssl_pde.core.cli import fail
from ssl_pde.data.schema import SchemaError, ShardSummary, check_values, list_shards, periodic_axes, validate_shard


def summarise(paths: list[Path]) -> dict[tuple[str, str], list[ShardSummary]]:
    """Validate every shard (structure, then values); group the summaries by (dataset, split): the dataset is the
    registry PDE, or an external dataset's name. Raises SchemaError."""
    groups: dict[tuple[str, str], list[ShardSummary]] = defaultdict(list)
    for p in paths:
        s = validate_shard(p)
        check_values(p)
        groups[(s.dataset, s.split)].append(s)
    return groups


def _range(values: list[np.ndarray]) -> str:
    v = np.concatenate([np.ravel(a) for a in values])
    return f"[{v.min():.4g}, {v.max():.4g}]"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    ap = argparse.ArgumentParser(prog="ssl-pde-inspect", description=__doc__.splitlines()[0])
    ap.add_argument("path", help="a shard file or a directory of shards")
    args = ap.parse_args(argv)
    path = Path(args.path)
    if not path.exists():
        fail(f"{str(path)!r} does not exist")
    paths = list_shards(path)
    if not paths:
        fail(f"no shard-*.h5 files under {str(path)!r}")
    try:
        groups = summarise(paths)
    except SchemaError as e:
        fail(str(e))
    console = Console()
    for (dataset, split), shards in sorted(groups.items()):
        n = sum(s.n for s in shards)
        shapes = sorted({s.u_shape[1:] for s in shards})
        label = f"{dataset} (external)" if shards[0].external else dataset
        table = Table(title=f"{label} / {split}: {n} trajectories in {len(shards)} shard(s), u per trajectory {shapes}")
        table.add_column("quantity")
        table.add_column("range [min, max]")
        table.add_row("channels", ", ".join(shards[0].field_names))
        table.add_row("periodic axes", ", ".join(periodic_axes(shards[0].path)) or "none")
        table.add_row("t", f"[{min(s.t_range[0] for s in shards):.4g}, {max(s.t_range[1] for s in shards):.4g}]")
        for name in shards[0].param_names:
            table.add_row(f"params/{name}", _range([s.params[name] for s in shards]))
        for name in sorted(shards[0].diagnostics):
            table.add_row(f"diagnostics/{name}", _range([s.diagnostics[name] for s in shards]))
        table.add_row("rejected and replaced", str(sum(s.n_rejected for s in shards)))
        table.add_row("generator_version", str(shards[0].attrs.get("generator_version")))
        if "source_format" in shards[0].attrs:  # imported by ssl-pde-import
            files = sorted({str(s.attrs.get("source_file")) for s in shards})
            table.add_row(
                "imported from",
                f"{shards[0].attrs['source_format']}: {files[0]}" + f" (+{len(files) - 1})" * (len(files) > 1),
            )
        console.print(table)
    console.print(f"[green]{len(paths)} shard(s) valid (schema_version 1)")


if __name__ == "__main__":
    main()
