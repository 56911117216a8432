"""ssl-pde: self-supervised representation learning on PDE data with Lie point symmetries."""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the Hydra config tree (``configs/`` beside the packages; the project installs editable).
CONFIG_DIR: Path = Path(__file__).resolve().parents[1] / "configs"
