"""Chemistry: molecules (graph + conformers) and their topology (terms, pairs, symmetry)."""

from ffparam.chem.molecule import Molecule
from ffparam.chem.topology import Topology

__all__ = ["Molecule", "Topology"]
