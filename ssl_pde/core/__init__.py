"""The shared core both ``data_gen`` and the training code build on: the user-error types, output-path checks
and command-line plumbing. With the PDE registry (:mod:`ssl_pde.pdes`) and the HDF5 schema
(:mod:`ssl_pde.data.schema`) it is all that ``data_gen`` may import from ``ssl_pde`` (``tests/test_layers.py``).
"""
