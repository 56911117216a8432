"""ssl-pde: self-supervised representation learning on PDE data with Lie point symmetries."""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the Hydra config tree, inside the package so that every install has it (``configs/`` at the repository
#: root is a link to it).
CONFIG_DIR: Path = Path(__file__).resolve().parent / "configs"
