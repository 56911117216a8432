"""Thin LightningModules that take their parts (encoder, projector, views, optimizer) from Hydra."""
