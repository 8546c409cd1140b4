"""A functional form added from outside ffparam, in this file only: a quartic bond
E = k/2 (r - r0)^2 + k4 (r - r0)^4, registered for the test. It must run through the whole
stack without any other file knowing it: parameter section and units, system building,
the engine's autograd path and its closed-form path (the compiled kernel has no code for
it, so the engine falls back to pure PyTorch), the OpenMM export, and a clear error from
the file formats it declares nothing for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ffparam.chem import Molecule
from ffparam.errors import ConventionError, InputError
from ffparam.export.gromacs import top_text
from ffparam.export.terms import flat_terms
from ffparam.forms import FORMS, Form, register
from ffparam.mm import MMEngine, build_openmm, evaluate_openmm
from ffparam.params import Parameter
from ffparam.params.builder import build_system, system_assignment
from ffparam.params.parameter_set import field_unit
from ffparam.units import KJ_PER_KCAL, NM_PER_ANGSTROM
from tests.mm.element_typed import element_typed_system


@dataclass(frozen=True)
class QuarticBond(Form):
    def energy(self, x, p):
        dx = x - p["length"]
        return 0.5 * p["k"] * dx**2 + p["k4"] * dx**4

    def derivative(self, x, p):
        dx = x - p["length"]
        return p["k"] * dx + 4.0 * p["k4"] * dx**3

    def openmm_force(self, atoms, p):
        import openmm

        force = openmm.CustomBondForce("0.5*k*(r-r0)^2 + k4*(r-r0)^4")
        for name in ("k", "r0", "k4"):
            force.addPerBondParameter(name)
        per_nm = 1.0 / NM_PER_ANGSTROM
        for (i, j), k, r0, k4 in zip(atoms, p["k"], p["length"], p["k4"]):
            force.addBond(i, j, [float(k * KJ_PER_KCAL * per_nm**2),
                                 float(r0 * NM_PER_ANGSTROM),
                                 float(k4 * KJ_PER_KCAL * per_nm**4)])
        return force


@pytest.fixture
def quartic():
    form = register(QuarticBond(
        name="test_quartic_bond", geometry="distance",
        fields={"k": "kcal/mol/A^2", "length": "A", "k4": "kcal/mol/A^4"},
        sections=("TestQuarticBonds",), label="quartic bonds", category="bonds",
        scaled_fields=("k", "k4")))
    try:
        yield form
    finally:
        FORMS.unregister(form.name)


@pytest.fixture
def quartic_system(quartic):
    mol = Molecule.from_smiles("OCC(=O)N", name="glycolamide").generate_conformers(3, seed=1)
    base = element_typed_system(mol)
    spec = system_assignment(base)
    source = base.parameters.copy()
    rows = spec["bonded"].pop("Bonds")
    for _, pid, _ in rows:
        if ("TestQuarticBonds", pid) not in source:
            length = source.get("Bonds", pid).values["length"]
            source.add("TestQuarticBonds", Parameter(pid, {"k": 550.0, "length": length,
                                                            "k4": 120.0 + len(pid)}))
    spec["bonded"]["TestQuarticBonds"] = [(a, pid, 0.5 + 0.1 * n) for n, (a, pid, _) in
                                          enumerate(rows)]  # energy scales exercise k's
    system = build_system(base.topology, source, spec["bonded"], spec["vdw_ids"],
                          spec["charges"], spec["charge_ids"], label="quartic test")
    rng = np.random.default_rng(3)
    positions = mol.conformers[rng.integers(0, mol.n_conformers, 4)]
    positions = positions + rng.normal(0.0, 0.06, positions.shape)  # stretch the bonds
    return system, positions


def test_registered_form_is_known_to_params(quartic_system):
    system, _ = quartic_system
    assert field_unit("TestQuarticBonds", "k4") == "kcal/mol/A^4"
    (group,) = [g for g in system.terms if g.name == "TestQuarticBonds"]
    assert group.form == "test_quartic_bond" and set(group.param_index) == {"k", "length",
                                                                              "k4"}


def test_registry_refuses_unknown_and_duplicate_forms(quartic):
    with pytest.raises(InputError, match="unknown functional form"):
        FORMS.get("no_such_form")
    with pytest.raises(InputError, match="already"):
        register(quartic)


def test_engine_forces_equal_finite_differences(quartic_system):
    system, positions = quartic_system
    engine = MMEngine(system)
    assert engine._kernel() is None  # no compiled code for the form: pure PyTorch
    result = engine.compute(positions)
    assert result.terms["TestQuarticBonds"].abs().max() > 1.0
    x = torch.as_tensor(positions[0])
    n = x.numel()
    step = 1e-5
    shifts = torch.eye(n, dtype=torch.float64).reshape(n, *x.shape) * step
    plus, minus = engine.energy(x + shifts), engine.energy(x - shifts)
    numeric = -((plus - minus) / (2 * step)).reshape(x.shape)
    np.testing.assert_allclose(result.forces[0].numpy(), numeric.numpy(), atol=2e-5)
    auto = engine.compute(positions, values=engine.parameter_vector().requires_grad_(True))
    np.testing.assert_allclose(result.forces.numpy(), auto.forces.detach().numpy(),
                               atol=1e-10)
    np.testing.assert_allclose(result.energy.numpy(), auto.energy.detach().numpy(),
                               atol=1e-10)


def test_openmm_export_matches_engine(quartic_system):
    system, positions = quartic_system
    export = build_openmm(system)
    energy, forces, groups = evaluate_openmm(export.system, positions, export.group_names)
    result = MMEngine(system).compute(positions)
    np.testing.assert_allclose(energy, result.energy.numpy(), atol=1e-4)
    np.testing.assert_allclose(forces, result.forces.numpy(), atol=1e-3)
    np.testing.assert_allclose(groups["TestQuarticBonds"],
                               result.terms["TestQuarticBonds"].numpy(), atol=1e-6)


def test_formats_without_the_form_name_it(quartic_system):
    system, _ = quartic_system
    with pytest.raises(ConventionError, match=r"quartic bonds .* GROMACS"):
        top_text(system.molecule, flat_terms(system))
