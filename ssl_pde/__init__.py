"""ssl-pde: self-supervised representation learning on PDE data with Lie point symmetries."""

from pathlib import Path

__version__ = "0.1.0"

#: Root of the Hydra config tree: ``configs/`` at the repository's top level, reached through the package's
#: ``configs`` link, which a wheel build follows, so that an installed package carries its configs.
CONFIG_DIR: Path = (Path(__file__).resolve().parent / "configs").resolve()
