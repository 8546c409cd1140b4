"""The independent evaluator of ``bench_fit.py``: every side's final k scored in OpenMM
(the exported ForceField XML with the k written in, energies on the QM geometries and after
OpenMM minimizations with either relaxation protocol), and each relaxed protocol's own
optimum found by scipy on the evaluator's residuals (:func:`reference_optimum`)."""

from __future__ import annotations

import time

import numpy as np

from fit_bench.problem import FD_STEP, K_DIHEDRAL, K_POSITION, PRIOR_KCAL, Problem, ffxml_with_k


class OpenMMEvaluator:
    """Independent RMSE of a parameter set: OpenMM ForceField XML -> System, energies on
    the QM geometries and after a restrained OpenMM minimization per grid point."""

    def __init__(self, problem: Problem) -> None:
        from openmm import app

        self.problem = problem
        self.pdb = app.PDBFile(str(problem.pdb))
        self.qm = problem.scan.energies - problem.scan.energies.min()
        self.anchor = int(np.argmin(self.qm))

    def system(self, k_by_period: dict[int, float]):
        import io

        from openmm import app

        text = ffxml_with_k(self.problem, k_by_period)
        forcefield = app.ForceField(io.StringIO(text))
        return forcefield.createSystem(
            self.pdb.topology, nonbondedMethod=app.NoCutoff, constraints=None, removeCMMotion=False
        )

    def energies(self, k_by_period: dict[int, float], protocol: str) -> np.ndarray:
        """MM energies (P,) kcal/mol: ``single`` on the QM geometries; after minimizing with
        every atom tethered to its QM position (``K_POSITION``) and either the scanned
        dihedral restrained at its QM value (``restrained``, ffparam's relaxed mode) or its
        four atoms frozen (``frozen``, ForceBalance's TorsionProfile). Restraint energies
        are left out."""
        import openmm
        from openmm import unit

        from ffparam.units import KCAL_MOL_A2_TO_KJ_MOL_NM2, KJ_PER_KCAL, NM_PER_ANGSTROM

        system = self.system(k_by_period)
        quad = self.problem.scan.dihedral
        restraints = []
        if protocol != "single":
            tether = openmm.CustomExternalForce("0.5*kp*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
            tether.addGlobalParameter("kp", K_POSITION * KCAL_MOL_A2_TO_KJ_MOL_NM2)
            for name in ("x0", "y0", "z0"):
                tether.addPerParticleParameter(name)
            for atom in range(system.getNumParticles()):
                tether.addParticle(atom, [0.0, 0.0, 0.0])
            restraints.append(tether)
        if protocol == "restrained":
            dihedral = openmm.CustomTorsionForce(
                "0.5*kd*d^2; d = dt - 2*pi*floor((dt + pi)/(2*pi)); dt = theta - theta0;"
                " pi = 3.141592653589793"
            )
            dihedral.addGlobalParameter("kd", K_DIHEDRAL * KJ_PER_KCAL)
            dihedral.addPerTorsionParameter("theta0")
            dihedral.addTorsion(*quad, [0.0])
            restraints.append(dihedral)
        elif protocol == "frozen":
            for atom in quad:  # OpenMM's minimizer does not move massless particles
                system.setParticleMass(atom, 0.0)
        for force in restraints:
            force.setForceGroup(31)
            system.addForce(force)
        context = openmm.Context(
            system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
        )
        out = []
        for xyz in self.problem.scan.geometries:
            nm = xyz * NM_PER_ANGSTROM
            context.setPositions(nm)
            if protocol != "single":
                for atom, position in enumerate(nm):
                    tether.setParticleParameters(atom, atom, list(position))
                tether.updateParametersInContext(context)
                if protocol == "restrained":
                    dihedral.setTorsionParameters(0, *quad, [_dihedral(xyz, quad)])
                    dihedral.updateParametersInContext(context)
                openmm.LocalEnergyMinimizer.minimize(context, 1e-4, 0)
            state = context.getState(getEnergy=True, groups=set(range(31)))
            out.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        del context
        return np.array(out) / KJ_PER_KCAL

    def rmse(self, k: np.ndarray) -> dict[str, float]:
        """RMSE kcal/mol of MM vs QM relative energies: single points referenced to the
        profile mean and to the QM-minimum point; both relaxed protocols referenced to the
        QM-minimum point."""
        k_by_period = dict(zip(self.problem.periodicities, (float(v) for v in k)))
        qm = self.qm
        single = self.energies(k_by_period, "single")
        out = {
            "single_point_mean": (single - single.mean()) - (qm - qm.mean()),
            "single_point_min": (single - single[self.anchor]) - qm,
        }
        for protocol in ("restrained", "frozen"):
            relaxed = self.energies(k_by_period, protocol)
            out[f"relaxed_{protocol}"] = (relaxed - relaxed[self.anchor]) - qm
        return {name: float(np.sqrt(np.mean(d**2))) for name, d in out.items()}


def _dihedral(xyz: np.ndarray, quad: tuple[int, ...]) -> float:
    """Dihedral angle (rad) of atoms ``quad`` in ``xyz`` (N, 3)."""
    p0, p1, p2, p3 = (xyz[a] for a in quad)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1 = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1) * b1
    w = b2 - np.dot(b2, b1) * b1
    return float(np.arctan2(np.dot(np.cross(b1, v), w), np.dot(v, w)))


def reference_optimum(problem: Problem, evaluator: OpenMMEvaluator, protocol: str) -> dict:
    """The optimum of a relaxed problem computed with other tools: scipy least_squares
    (2-point finite differences, step ``FD_STEP``) on the evaluator's OpenMM residuals
    (one relaxation protocol), from the start; checks that each code's fit reached the
    optimum of its own relaxed objective."""
    import scipy.optimize

    def residuals(x: np.ndarray) -> np.ndarray:
        k = problem.start + PRIOR_KCAL * x
        energies = evaluator.energies(dict(zip(problem.periodicities, k)), protocol)
        diff = (energies - energies[evaluator.anchor]) - evaluator.qm
        return diff / np.sqrt(len(diff))

    start = time.perf_counter()
    fit = scipy.optimize.least_squares(
        residuals,
        np.zeros(len(problem.start)),
        diff_step=FD_STEP,
        xtol=1e-10,
        ftol=1e-10,
        gtol=1e-10,
    )
    return {
        "objective": float(2 * fit.cost),
        "k": (problem.start + PRIOR_KCAL * fit.x).tolist(),
        "evaluations": int(fit.nfev + fit.njev * len(problem.start)),
        "seconds": time.perf_counter() - start,
    }
