"""Fragmentation around rotatable bonds, so torsion drives of large molecules run on small
ones (Wiberg-bond-order fragmenter of Stern et al. 2022, GFN2-xTB bond orders computed and
stored through the reference layer).

* :func:`fragment_for_bond`, :func:`fragment_molecule` -> :class:`Fragment`;
  :func:`needs_fragmentation` is the size rule (:mod:`~ffparam.fragment.fragmenter`);
* :func:`wiberg_bond_orders`: the ``bond_orders`` reference task through a Store
  (:mod:`~ffparam.fragment.bond_orders`);
* keep-together rules and caps (:mod:`~ffparam.fragment.rules`);
* :func:`map_torsion_groups`, :func:`transfer_fitted_torsions`,
  :func:`apply_torsion_parameters`: fitted fragment torsions back to the parent
  (:mod:`~ffparam.fragment.mapping`).
"""

from __future__ import annotations

from ffparam.fragment.bond_orders import wiberg_bond_orders
from ffparam.fragment.fragmenter import (
    DEFAULT_MAX_HEAVY_ATOMS,
    DEFAULT_WBO_THRESHOLD,
    Fragment,
    fragment_for_bond,
    fragment_molecule,
    needs_fragmentation,
)
from ffparam.fragment.mapping import (
    apply_torsion_parameters,
    map_torsion_groups,
    transfer_fitted_torsions,
)

__all__ = [
    "DEFAULT_MAX_HEAVY_ATOMS",
    "DEFAULT_WBO_THRESHOLD",
    "Fragment",
    "apply_torsion_parameters",
    "fragment_for_bond",
    "fragment_molecule",
    "map_torsion_groups",
    "needs_fragmentation",
    "transfer_fitted_torsions",
    "wiberg_bond_orders",
]
