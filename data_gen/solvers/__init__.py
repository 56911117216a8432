"""Solver registry, keyed by the same names as ``ssl_pde.pdes.PDES``."""

from data_gen.solvers.base import ConfigError, GeneratedBatch, PeriodicGenerator1D
from data_gen.solvers.burgers import BurgersGenerator
from data_gen.solvers.kdv import KdVGenerator
from data_gen.solvers.ks import KSGenerator

SOLVERS: dict[str, type[PeriodicGenerator1D]] = {
    "burgers": BurgersGenerator,
    "kdv": KdVGenerator,
    "ks": KSGenerator,
}

__all__ = ["SOLVERS", "BurgersGenerator", "ConfigError", "GeneratedBatch", "KSGenerator", "KdVGenerator"]
