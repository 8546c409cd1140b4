"""``bespoke --polarizable`` Drude fit: alpha/Thole to the QM tensor, charges + alpha to
QM ESPs in fields (fitted values differ from the start, the QM isotropic polarizability is
matched, the field-ESP error drops, the total charge is kept); bad settings refused; the
CLI writes the fitted model (System XML + ffxml) and reports it in metrics.json."""

import json
import subprocess
import sys

import numpy as np
import openmm
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import InputError
from ffparam.reference.store import Store
from ffparam.runtime import SerialExecutor
from ffparam.workflows.bespoke import BespokeSettings
from ffparam.workflows.bespoke_drude import fit_drude

METHOD = "hf/6-31g"  # seconds; the default HF/aug-cc-pVDZ is the production level


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    mol = Molecule.from_smiles("C=O", name="formaldehyde").generate_conformers(1, seed=7)
    system = assign_parameters(mol, "sage", charges="gasteiger")
    with Store(tmp_path_factory.mktemp("drude") / "s.db") as store:
        drude, summary = fit_drude(system, METHOD, 5.93, store, SerialExecutor())
        n_records = len(list(store.records(status="complete")))
    return system, drude, summary, n_records


def test_fit_moves_alpha_and_charges_to_qm(fitted):
    _, drude, summary, n_records = fitted
    assert n_records == 8 and summary.n_fields == 7  # tensor + 7 field ESPs, all stored
    for values in summary.types.values():
        assert abs(values["alpha_fitted_a3"] / values["alpha_start_a3"] - 1) > 0.05
    pol = summary.polarizability
    assert pol["fitted_isotropic_a3"] == pytest.approx(pol["qm_isotropic_a3"], rel=0.02)
    assert abs(pol["start_isotropic_a3"] / pol["qm_isotropic_a3"] - 1) > 0.1
    esp = summary.esp_field
    assert esp["fitted_rmse_kcal_mol_e"] < 0.5 * esp["start_rmse_kcal_mol_e"]
    assert esp["fitted_induced_rmse_kcal_mol_e"] < esp["start_induced_rmse_kcal_mol_e"]
    q = np.array(summary.charges_fitted)
    assert abs(q.sum()) < 1e-4 and q[2] == q[3]  # neutral, equivalent hydrogens tied
    assert not np.allclose(q, summary.charges_start, atol=0.02)
    p = drude.parameters.vector()
    # the returned model is neutral exactly (the fit's residual removed in equal shares)
    charges = p[drude.nonbonded.charge_index]
    assert abs(charges.sum()) < 1e-12 and charges[2] == charges[3]
    np.testing.assert_allclose(charges, q - q.sum() / len(q), atol=1e-12)
    assert np.allclose(drude.drude.alphas(p), [summary.types[t]["alpha_fitted_a3"]
                                               for t in drude.drude.type_ids])
    json.dumps(summary.to_json())


def test_bad_polarizable_settings_are_one_line():
    with pytest.raises(InputError, match="PySCF method"):
        BespokeSettings(polarizable=True, polarizability_method="gfn2-xtb")
    with pytest.raises(InputError, match="field_strength_kcal_mol_e_a"):
        BespokeSettings(polarizable=True, field_strength_kcal_mol_e_a=0.0)


@pytest.mark.slow
def test_bespoke_polarizable_cli_writes_the_fitted_model(tmp_path):
    out = tmp_path / "form"
    cmd = [sys.executable, "-m", "ffparam.cli.main", "bespoke", "C=O", "--name", "form",
           "--polarizable", "--polarizability-method", METHOD, "--out", str(out),
           "--charges", "gasteiger", "--md-ps", "0", "--validation-conformers", "0",
           "--no-validate-geometry", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    fit = json.loads((out / "metrics.json").read_text())["validation"]["drude_fit"]
    assert fit["method"] == METHOD
    read = openmm.XmlSerializer.deserialize((out / "form.system.xml").read_text())
    force = next(f for f in read.getForces() if isinstance(f, openmm.DrudeForce))
    alphas = sorted(force.getParticleParameters(k)[6]._value * 1000
                    for k in range(force.getNumParticles()))  # nm^3 -> A^3
    expected = sorted(v["alpha_fitted_a3"] for v in fit["types"].values())
    np.testing.assert_allclose(alphas, expected, rtol=1e-9)
    assert all(v["alpha_fitted_a3"] != v["alpha_start_a3"] for v in fit["types"].values())
    assert (out / "form.forcefield.xml").exists()
    bad = subprocess.run([*cmd[:9], "gfn2-xtb", *cmd[10:]], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "PySCF method" in bad.stderr
