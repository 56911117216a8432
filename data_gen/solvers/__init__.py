"""Solver registry, keyed by the same names as ``ssl_pde.pdes.PDES``."""

from data_gen.solvers.base import ConfigError, GeneratedBatch, PeriodicGenerator1D, TrajectoryGenerator
from data_gen.solvers.burgers import BurgersGenerator
from data_gen.solvers.kdv import KdVGenerator
from data_gen.solvers.ks import KSGenerator
from data_gen.solvers.ns2d import NS2DGenerator

SOLVERS: dict[str, type[TrajectoryGenerator]] = {
    "burgers": BurgersGenerator,
    "kdv": KdVGenerator,
    "ks": KSGenerator,
    "ns2d": NS2DGenerator,
}

__all__ = [
    "SOLVERS",
    "BurgersGenerator",
    "ConfigError",
    "GeneratedBatch",
    "KSGenerator",
    "KdVGenerator",
    "NS2DGenerator",
    "PeriodicGenerator1D",
    "TrajectoryGenerator",
]
