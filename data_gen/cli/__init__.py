"""Command-line entry points of the data generator (``ssl-pde-generate``, ``ssl-pde-verify``, ``ssl-pde-import``)."""
