"""Data access: the HDF5 schema (``schema``) and, later, datasets and the Lightning data module."""
