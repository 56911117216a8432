"""Downstream evaluation of frozen encoders: parameter regression (and, later, time-stepping)."""
