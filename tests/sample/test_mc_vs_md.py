"""Monte Carlo against OpenMM MD of the same force field (slow; benchmarks/bench_mc.py has
the full comparison at 300 and 500 K).

Butane at 500 K, where Sage's C-C-C-C wells exchange every ~15 ps so that 32 independent
MD copies of 0.2 ns pin the trans population to ~3 %. Both samplers draw from
exp(-E(x)/kT) in Cartesian space; the test asserts |MC - MD| < 5 combined standard errors
(each from the spread over independent chains / copies), and that the copied MD system
equals the single-molecule export (run_md refuses otherwise).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.sample import MCSettings, run_mc

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mc.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_mc", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.stochastic
def test_butane_500k_populations_match_openmm_md(seed: int) -> None:
    bench = load_bench()
    molecule = Molecule.from_smiles("CCCC", name="butane").generate_conformers(1, seed=seed)
    system = assign_parameters(molecule, "sage", "gasteiger")
    quads = bench.carbon_dihedrals(4)
    start = molecule.conformers[0]
    settings = MCSettings(temperature_k=500.0, n_chains=128, n_steps=3000,
                          equilibration_steps=750, seed=seed)
    mc = bench.populations(run_mc(system, start, settings).frames, quads)
    md_frames = bench.run_md(system, start, 500.0, 32, 0.2, 500, seed, 0.02)
    md = bench.populations(md_frames, quads)
    z = bench.compare(mc, md)
    assert all(abs(v) < 5 for v in z.values()), (mc, md, z)
    assert all(np.isfinite(v["error"]) and v["error"] > 0 for v in md.values())
