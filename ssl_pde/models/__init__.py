"""Encoders, projectors and heads (built by Hydra ``_target_``)."""
