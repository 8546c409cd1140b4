"""Base class of the PyTorch atomistic networks: per-atom energies, forces by autograd.

Every network predicts per-atom energies e_i (eV); the frame energy is E = sum_i e_i and the
forces are F = -dE/dR by automatic differentiation, so every model is energy-conserving by
construction. Each per-atom energy is

    e_i = scale * y_i + shift[Z_i]

where y_i is the network's dimensionless output, ``shift`` holds per-element energies
(reference energy of the element plus the mean per-atom residual of the training set) and
``scale`` the RMS of the training force components (eV/Angstrom x 1 Angstrom), so that the
network learns numbers of order one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ffparam.ml.batch import Batch
from ffparam.ml.data import element_symbol


class AtomisticModel(torch.nn.Module):
    """Per-atom energy model over a fixed set of elements.

    Subclasses set ``model_type``, implement :meth:`raw_atom_outputs` and :meth:`config`
    (the keyword arguments that rebuild the model, JSON-serializable).
    """

    model_type: str = ""

    def __init__(self, elements: Sequence[int]) -> None:
        super().__init__()
        elements = sorted(int(z) for z in elements)
        if not elements:
            raise ValueError("a model needs at least one element")
        self.element_list = tuple(elements)
        lookup = torch.full((119,), -1, dtype=torch.int64)
        lookup[torch.tensor(elements)] = torch.arange(len(elements))
        self.register_buffer("species_lookup", lookup, persistent=False)
        self.register_buffer("energy_shift", torch.zeros(len(elements)))
        self.register_buffer("energy_scale", torch.ones(()))

    @property
    def cutoff(self) -> float:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError

    def species_index(self, numbers: torch.Tensor) -> torch.Tensor:
        """(A,) species index of each atom; an element the model never saw is an error."""
        from ffparam.errors import InputError

        idx = self.species_lookup[numbers.clamp(0, 118)]
        if bool((idx < 0).any()) or bool((numbers > 118).any()):
            bad = sorted({int(z) for z in numbers[idx < 0].tolist()})
            names = ", ".join(element_symbol(z) for z in bad)
            known = ", ".join(element_symbol(z) for z in self.element_list)
            raise InputError(f"element(s) {names} not seen in training (model knows {known})")
        return idx

    def raw_atom_outputs(
        self, species: torch.Tensor, positions: torch.Tensor, n_atoms: torch.Tensor
    ) -> torch.Tensor:
        """(A,) dimensionless network outputs from species (A,) and positions (A, 3)."""
        raise NotImplementedError

    def atom_energies(
        self, numbers: torch.Tensor, positions: torch.Tensor, n_atoms: torch.Tensor
    ) -> torch.Tensor:
        """(A,) per-atom energies in eV."""
        species = self.species_index(numbers)
        raw = self.raw_atom_outputs(species, positions, n_atoms)
        return self.energy_scale * raw + self.energy_shift[species]

    def set_normalization(self, shift: torch.Tensor, scale: float) -> None:
        """Set per-element energy shifts (n_elements,) eV and the output scale (eV)."""
        self.energy_shift.copy_(torch.as_tensor(shift, dtype=self.energy_shift.dtype))
        self.energy_scale.fill_(float(scale))


def energy_and_forces(
    model: AtomisticModel,
    batch: Batch,
    create_graph: bool = False,
    forces: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Frame energies (B,) eV, forces (A, 3) eV/Angstrom = -dE/dR, per-atom energies (A,).

    ``create_graph=True`` keeps the graph of the forces for training on them; otherwise the
    results are detached.
    """
    dtype = model.energy_shift.dtype
    positions = batch.positions.detach().to(dtype)
    if forces:
        positions.requires_grad_(True)
    with torch.enable_grad() if forces else torch.no_grad():
        atom_e = model.atom_energies(batch.numbers, positions, batch.n_atoms)
        energy = atom_e.new_zeros(batch.n_frames).index_add(0, batch.frame, atom_e)
        force = None
        if forces:
            (grad,) = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph)
            force = -grad
    if not create_graph:
        energy, atom_e = energy.detach(), atom_e.detach()
        force = None if force is None else force.detach()
    return energy, force, atom_e
