"""Exporters: this project's schema-v1 shards written in other projects' formats (``ssl-pde-export``).

==============  ================================================================  ==============================
format          written                                                            read by
==============  ================================================================  ==============================
``well``        ``<out_dir>/datasets/<dataset>/data/<split>/<shard>.hdf5``, one     ``the_well.data.WellDataset``
                file of The Well per shard (:mod:`data_gen.exporters.well`);
                ``<out_dir>/datasets/<dataset>/stats.yaml``, the train split's
                normalisation statistics
==============  ================================================================  ==============================
"""

from __future__ import annotations

from data_gen.exporters import well

FORMATS = ("well",)

__all__ = ["FORMATS", "well"]
