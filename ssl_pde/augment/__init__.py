"""Lie-point-symmetry augmentation: composition of sampled group elements (``lie``) and views (``views``)."""
