"""Numerical data generation: batched pseudo-spectral solvers, samplers, the HDF5 writer and its CLIs; importers of
external datasets (``importers/``, ``ssl-pde-import``).

``data_gen`` may import ``ssl_pde.pdes`` and ``ssl_pde.data.schema`` (names have one source of truth);
the training path (``ssl_pde``) never imports ``data_gen``.
"""
