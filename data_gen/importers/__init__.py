"""Importers of external PDE datasets (``ssl-pde-import``): one module per source format, each turning one source
file into a :class:`~data_gen.importers.base.Mapped` (trajectories read one at a time, plus metadata), written as
schema-v1 shards by :mod:`data_gen.importers.shards`.

==============  ======================================================  ==========================================
format          source                                                  dataset
==============  ======================================================  ==========================================
``lpsda``       LPSDA ``KdV_*.h5``, ``KS_*.h5``, ``Heat_*.h5``          kdv, ks; heat (external)
``pdearena``    PDEArena ``NavierStokes2D_*.h5`` (conditioned smoke)    ns2d
``well``        The Well ``*.hdf5``                                     its ``dataset_name`` (external), or the
                                                                        registry PDE of ``well.REGISTRY_MAPS``
``pdebench``    PDEBench 1D Burgers ``*.hdf5``                          burgers
==============  ======================================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py

from data_gen.importers import lpsda, pdearena, pdebench, well
from data_gen.importers.base import Mapped, SourceError

IMPORTERS: dict[str, Callable[[h5py.File, Path], Mapped]] = {
    "lpsda": lpsda.read,
    "pdearena": pdearena.read,
    "well": well.read,
    "pdebench": pdebench.read,
}
SUFFIXES = (".h5", ".hdf5")

__all__ = ["IMPORTERS", "SUFFIXES", "Mapped", "SourceError"]
