"""The shared core: what both ``data_gen`` and the training code may import (the user-error type so far)."""
