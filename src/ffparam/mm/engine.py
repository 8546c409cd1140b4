"""The batched MM engine: energies, forces and Hessians of a ParameterizedSystem.

Positions are (n_conformers, n_atoms, 3) Angstrom; energies kcal/mol; forces
kcal/mol/Angstrom; Hessians kcal/mol/Angstrom^2. Everything is float64 PyTorch, evaluated
for all conformers at once, and differentiable with respect to positions and to the flat
parameter vector (``ParameterSet.vector()``), which is what the fitting engine uses.
Gas phase: no cutoff, no periodicity.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from ffparam.errors import InputError, NonFiniteError
from ffparam.forms import FORMS, GEOMETRIES, Form
from ffparam.mm import analytic as A
from ffparam.mm import kernel as K
from ffparam.mm import terms as F
from ffparam.params.system import ParameterizedSystem

Tensor = torch.Tensor

NONBONDED_TERMS = ("vdW", "Electrostatics")


def _concat_rows(parts: list[tuple[Tensor, Tensor, Tensor]], width: int, like: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenate (index, slot, parameter columns) of several groups (contiguous); empty
    ones on ``like``'s device and dtype."""
    if not parts:
        empty = torch.zeros(0, dtype=torch.long, device=like.device)
        return empty, empty, like.new_zeros((0, width))
    return tuple(torch.cat([part[k] for part in parts]).contiguous() for k in range(3))


@dataclass
class EnergyResult:
    """Energies of a batch of conformers.

    Attributes:
        energy: (n_conformers,) total potential energy, kcal/mol.
        forces: (n_conformers, n_atoms, 3) kcal/mol/Angstrom, or None if not asked for.
        terms: term name -> (n_conformers,) energy, kcal/mol (sums to ``energy``).
    """

    energy: Tensor
    forces: Tensor | None = None
    terms: dict[str, Tensor] = field(default_factory=dict)

    def terms_numpy(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.terms.items()}


_ops_lock = threading.Lock()
_ops_state = {"active": 0, "saved": 1}


@contextlib.contextmanager
def _single_threaded_ops() -> Iterator[None]:
    """torch's intra-op threads set to 1 while any caller is inside (process-wide; nested
    and concurrent callers share it, the last one out restores the saved count)."""
    with _ops_lock:
        if _ops_state["active"] == 0:
            _ops_state["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _ops_state["active"] += 1
    try:
        yield
    finally:
        with _ops_lock:
            _ops_state["active"] -= 1
            if _ops_state["active"] == 0:
                torch.set_num_threads(_ops_state["saved"])


def _run_chunks(run: Callable[[slice], None], chunks: list[slice]) -> None:
    """``run`` every chunk, chunks in parallel over ``torch.get_num_threads()`` threads,
    each chunk's tensor operations single-threaded.

    The operations of one chunk are too small for intra-op threads: under load their
    barriers made the pure-PyTorch path 6-8x slower with 2 threads than with 1. Torch
    releases the GIL inside each operation, so chunk-level threads run in parallel.
    """
    threads = min(torch.get_num_threads(), len(chunks))
    if threads <= 1:
        for chunk in chunks:
            run(chunk)
        return
    with _single_threaded_ops(), ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, chunks))


class MMEngine:
    """Evaluate a :class:`ParameterizedSystem` on batches of geometries.

    Args:
        system: the parameterized molecule.
        dtype, device: torch dtype (float64 default) and device.
    """

    def __init__(self, system: ParameterizedSystem, dtype: torch.dtype = torch.float64,
                 device: str | torch.device = "cpu") -> None:
        self.system = system
        self.n_atoms = system.n_atoms
        self.dtype = dtype
        self.device = torch.device(device)
        as_index = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long,  # noqa: E731
                                             device=self.device)
        as_float = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype,  # noqa: E731
                                             device=self.device)
        self._groups = []
        for g in system.terms:
            self._groups.append({
                "form": FORMS.get(g.form),
                "name": g.name,
                "atoms": as_index(g.atoms),
                "index": {k: as_index(v) for k, v in g.param_index.items()},
                "periodicity": None if g.periodicity is None else as_float(g.periodicity),
                "scale": as_float(g.scale),
            })
        nb = system.nonbonded
        self._nb = {
            "charge": as_index(nb.charge_index),
            "sigma": as_index(nb.sigma_index),
            "epsilon": as_index(nb.epsilon_index),
            "pairs": as_index(nb.pairs).reshape(-1, 2),
            "coulomb_scale": as_float(nb.coulomb_scale),
            "lj_scale": as_float(nb.lj_scale),
            "nbfix_rows": as_index(nb.nbfix_rows),
            "nbfix_sigma": as_index(nb.nbfix_sigma_index),
            "nbfix_epsilon": as_index(nb.nbfix_epsilon_index),
            "rule": nb.combining_rule,
        }

    # ------------------------------------------------------------------ inputs
    def parameter_vector(self) -> Tensor:
        """The system's current parameter values as a tensor (internal units)."""
        return torch.as_tensor(self.system.parameters.vector(), dtype=self.dtype,
                               device=self.device)

    def _positions(self, positions) -> Tensor:
        pos = torch.as_tensor(positions, dtype=self.dtype, device=self.device)
        if pos.ndim == 2:
            pos = pos.unsqueeze(0)
        if pos.ndim != 3 or pos.shape[1:] != (self.n_atoms, 3):
            raise InputError(f"positions must be (n_conformers, {self.n_atoms}, 3), "
                             f"got {tuple(pos.shape)}")
        return pos

    # ------------------------------------------------------------------ energies
    def term_energies(self, positions, values: Tensor | None = None) -> dict[str, Tensor]:
        """Per-term energies, name -> (n_conformers,) kcal/mol.

        Args:
            positions: (n_conformers, n_atoms, 3) or (n_atoms, 3) Angstrom tensor/array.
            values: flat parameter vector (internal units); default the system's values.
                Pass a tensor with ``requires_grad`` to differentiate w.r.t. parameters.
        """
        pos = self._positions(positions)
        p = self.parameter_vector() if values is None else values
        out: dict[str, Tensor] = {}
        for g in self._groups:
            energy = self._bonded(g, pos, p)
            out[g["name"]] = out.get(g["name"], 0) + energy
        out.update(self._nonbonded(pos, p))
        return out

    def energy(self, positions, values: Tensor | None = None) -> Tensor:
        """Total energy (n_conformers,) kcal/mol, differentiable in positions and values."""
        return sum(self.term_energies(positions, values).values())

    def compute(self, positions, values: Tensor | None = None, forces: bool = True,
                terms: bool = True, check_finite: bool = True) -> EnergyResult:
        """Energies, forces = -dE/dx and per-term energies.

        Without parameter gradients (``values`` None or not requiring grad) energies and
        forces come from the closed-form derivatives: the compiled kernel of
        :mod:`ffparam.mm.kernel` when :attr:`use_kernel` and it is available (CPU float64),
        else the pure-PyTorch :mod:`ffparam.mm.analytic` in conformer chunks of about
        :attr:`chunk_bytes` so the working set stays in cache, chunks in parallel threads
        (the two agree to 1e-10). Systems with a functional form that the kernel has no
        code for (:attr:`ffparam.forms.Form.kernel` None) use the pure-PyTorch path. With
        ``values.requires_grad`` everything goes through autograd (create_graph) so that
        energies and forces can be differentiated with respect to the parameters.
        """
        pos = self._positions(positions)
        if forces and (values is None or not values.requires_grad):
            if pos.requires_grad:
                pos = pos.detach()
            lib = self._kernel()
            if lib is not None:
                return self._compute_kernel(lib, pos, values, terms, check_finite)
            return self._compute_analytic(pos, values, terms, check_finite)
        if forces:
            pos = pos.detach().requires_grad_(True)
        per_term = self.term_energies(pos, values)
        total = sum(per_term.values())
        force = None
        if forces:
            (grad,) = torch.autograd.grad(total.sum(), pos, create_graph=values is not None
                                          and values.requires_grad)
            force = -grad
        if check_finite:
            self._check_finite(total.detach())
        if values is None or not values.requires_grad:
            total = total.detach()
            per_term = {k: v.detach() for k, v in per_term.items()}
            force = None if force is None else force.detach()
        return EnergyResult(total, force, per_term if terms else {})

    def hessian(self, positions, values: Tensor | None = None) -> Tensor:
        """Hessian d2E/dx2 (n_conformers, 3N, 3N) kcal/mol/Angstrom^2 (autograd)."""
        pos = self._positions(positions)
        n = pos.shape[1] * 3
        p = self.parameter_vector() if values is None else values

        def energy_flat(x: Tensor) -> Tensor:
            return self.energy(x.reshape(1, -1, 3), p)[0]

        hess = [torch.autograd.functional.hessian(energy_flat, conf.reshape(-1))
                for conf in pos]
        return torch.stack(hess).reshape(-1, n, n)

    def parameter_gradient(self, positions, values: Tensor | None = None) -> Tensor:
        """dE/d(parameter vector) (n_conformers, n_parameters) in kcal/mol per internal
        unit of each parameter (Jacobian by reverse-mode autograd)."""
        pos = self._positions(positions)
        p = (self.parameter_vector() if values is None else values).detach()
        return torch.func.jacrev(lambda v: self.energy(pos, v))(p)

    use_kernel: bool = True
    """Use the compiled kernel (:mod:`ffparam.mm.kernel`) for the no-gradient call when it
    is available; False forces the pure-PyTorch path."""

    def _kernel(self):
        if not self.use_kernel or self.device.type != "cpu" or self.dtype != torch.float64:
            return None
        if any(g["form"].kernel is None for g in self._groups):
            return None  # a form without compiled code: the pure-PyTorch path
        pairs = self._nb["pairs"]
        if len(pairs) and bool((pairs[:, 0] == pairs[:, 1]).any()):
            return None  # the kernel's pair loop assumes two distinct atoms per pair
        return K.load()

    def _compute_kernel(self, lib, pos: Tensor, values: Tensor | None, terms: bool,
                        check_finite: bool) -> EnergyResult:
        p = (self.parameter_vector() if values is None else values).detach()
        flat, names = self._kernel_terms(p)
        slots, grad = K.evaluate(lib, flat, pos)
        total = slots.sum(-1)
        if check_finite:
            self._check_finite(total)
        per_term: dict[str, Tensor] = {}
        if terms:
            per_term = {name: slots[:, k] for k, name in enumerate(names)}
        return EnergyResult(total, grad.neg_(), per_term)

    @staticmethod
    def _check_finite(total: Tensor) -> None:
        if not torch.all(torch.isfinite(total)):
            bad = torch.nonzero(~torch.isfinite(total)).flatten().tolist()
            raise NonFiniteError(f"non-finite MM energy for conformer(s) {bad[:10]} "
                                 "(overlapping atoms?)")

    def _tables(self, p: Tensor, kind: str):
        """Parameter-derived tables of the fast paths (``kernel``: (KernelTerms, term
        names); ``packed``: analytic.Packed), built once per parameter vector: a fit or a
        scan calls with the same values many times."""
        cache = getattr(self, "_table_cache", None)
        if cache is None or cache[0].shape != p.shape or not torch.equal(cache[0], p):
            cache = self._table_cache = (p.clone(), {})
        if kind not in cache[1]:
            build = self._build_kernel_terms if kind == "kernel" else self._build_packed
            cache[1][kind] = build(p)
        return cache[1][kind]

    def _kernel_terms(self, p: Tensor) -> tuple[K.KernelTerms, list[str]]:
        return self._tables(p, "kernel")

    def _build_kernel_terms(self, p: Tensor) -> tuple[K.KernelTerms, list[str]]:
        names = list(dict.fromkeys([g["name"] for g in self._groups] + list(NONBONDED_TERMS)))
        slot = {name: k for k, name in enumerate(names)}
        kinds: dict[str, list] = {"bond": [], "morse": [], "angle": [], "tors": []}
        _, quad_of = self._dihedral_layout()
        for gi, (form, name, atoms, par) in enumerate(self._prepared_terms(p)):
            kind, index, columns = form.kernel, atoms, tuple(par[f] for f in form.fields)
            if kind == "torsion":  # kernel kind 2 for integer n (no trig), else 0
                n, k, phase = par["periodicity"], par["k"], par["phase"]
                whole = (n == torch.round(n)) & (n >= 0)
                kind, index, columns = "tors", quad_of[gi], (
                    k, n, phase, torch.cos(phase), torch.sin(phase), 2.0 * whole)
            elif kind == "improper":  # kernel kind 1
                k = par["k"]
                kind, index, columns = "tors", quad_of[gi], (k, 0 * k, par["angle"], 0 * k,
                                                             0 * k, 0 * k + 1)
            rows = torch.full((len(index),), slot[name], dtype=torch.long, device=self.device)
            kinds[kind].append((index, rows, torch.stack(columns, dim=1)))
        bond, morse, angle, tors = (_concat_rows(kinds[kind], width, p) for kind, width in
                                    (("bond", 2), ("morse", 3), ("angle", 2), ("tors", 6)))
        qq, eps, sigma = self._pair_parameters(p)
        sigma6 = (sigma**2)**3  # as (sigma^2)^3: the kernel's rounding
        pair_par = torch.stack([F.COULOMB_CONSTANT_KCAL_MOL_A_E2 * qq,
                                4.0 * eps * sigma6 * sigma6, 4.0 * eps * sigma6], dim=1)
        quads = self._dihedral_layout()[0]
        order = torch.sort(tors[0], stable=True).indices  # the kernel walks rows by quad
        tors = tuple(part[order] for part in tors)
        kind = tors[2][:, 5].to(torch.long).contiguous()
        quad_phi = torch.zeros(len(quads), dtype=torch.long, device=self.device)
        quad_phi.index_fill_(0, tors[0][kind != 2], 1)
        quad_start = torch.zeros(len(quads) + 1, dtype=torch.long, device=self.device)
        torch.cumsum(torch.bincount(tors[0], minlength=len(quads)), 0, out=quad_start[1:])
        flat = K.KernelTerms(
            n_atoms=self.n_atoms, n_slots=len(names),
            bond_idx=bond[0].reshape(-1, 2), bond_slot=bond[1], bond_par=bond[2],
            morse_idx=morse[0].reshape(-1, 2), morse_slot=morse[1], morse_par=morse[2],
            angle_idx=angle[0].reshape(-1, 3), angle_slot=angle[1], angle_par=angle[2],
            quad_idx=quads.contiguous(), quad_phi=quad_phi, quad_start=quad_start,
            tors_quad=tors[0],
            tors_slot=tors[1], tors_kind=kind, tors_par=tors[2][:, :5].contiguous(),
            pair_idx=self._nb["pairs"].contiguous(), pair_par=pair_par.contiguous(),
            vdw_slot=slot["vdW"], elec_slot=slot["Electrostatics"])
        return flat, names

    chunk_bytes: int = 3 << 20
    """Size of the gathered (slots, 3, chunk) float64 coordinates per chunk of the
    pure-PyTorch path, which sets the conformers per chunk (haloperidol x 1000, 1 thread,
    CPU ms by chunk of 16/32/64/128/256 conformers: 67/51/53/56/64; 3 MiB is ~40)."""

    def _chunks(self, n_conformers: int, n_slots: int) -> list[slice]:
        """Conformer chunks of about :attr:`chunk_bytes`; when there are several, as many as
        a multiple of the thread count (so the threads get equal work)."""
        if n_conformers == 0:
            return []
        size = max(1, self.chunk_bytes // (24 * max(n_slots, 1)))
        count = -(-n_conformers // size)
        if count > 1:
            threads = max(1, torch.get_num_threads())
            count = -(-count // threads) * threads
        size = -(-n_conformers // count)
        return [slice(start, start + size) for start in range(0, n_conformers, size)]

    def _compute_analytic(self, pos: Tensor, values: Tensor | None, terms: bool,
                          check_finite: bool) -> EnergyResult:
        p = (self.parameter_vector() if values is None else values).detach()
        packed, names = self._tables(p, "packed")
        pos = pos.detach()
        slots = pos.new_empty((pos.shape[0], len(names)))
        forces = torch.empty_like(pos)

        def run(chunk: slice) -> None:
            # (N, 3, C): conformers last, so gathers and scatters move whole rows
            energy, grad = A.evaluate(packed, pos[chunk].permute(1, 2, 0).contiguous(),
                                      len(names))
            slots[chunk] = energy.T
            torch.neg(grad.permute(2, 0, 1), out=forces[chunk])

        chunks = self._chunks(pos.shape[0], len(packed.index))
        if pos.device.type == "cpu":
            _run_chunks(run, chunks)
        else:  # one stream: threads would only serialize
            for chunk in chunks:
                run(chunk)
        total = slots.sum(-1)
        if check_finite:
            self._check_finite(total)
        per_term = {name: slots[:, k] for k, name in enumerate(names)} if terms else {}
        return EnergyResult(total, forces, per_term)

    def _build_packed(self, p: Tensor) -> tuple[A.Packed, list[str]]:
        """Every term in the layout of :class:`analytic.Packed`: the rows of each internal
        coordinate grouped by form (one :class:`analytic.FormRows` per form)."""
        names = list(dict.fromkeys([g["name"] for g in self._groups] + list(NONBONDED_TERMS)))
        slot = {name: k for k, name in enumerate(names)}
        prepared = self._prepared_terms(p)
        quads, quad_of = self._dihedral_layout()
        by_form: dict[str, dict[str, list[int]]] = {geometry: {} for geometry in GEOMETRIES}
        for gi, (form, *_rest) in enumerate(prepared):
            by_form[form.geometry].setdefault(form.name, []).append(gi)
        forms: dict[str, list[A.FormRows]] = {}
        atoms: dict[str, list[Tensor]] = {}
        row_term: list[Tensor] = []
        for geometry, groups in by_form.items():
            forms[geometry], atoms[geometry] = [], []
            for gis in groups.values():
                form = prepared[gis[0]][0]
                start, first_row = sum(len(a) for a in atoms[geometry]), len(torch.cat(
                    row_term)) if row_term else 0
                for gi in gis:
                    atoms[geometry].append(prepared[gi][2])
                    row_term.append(torch.full((len(prepared[gi][2]),), slot[prepared[gi][1]],
                                               dtype=torch.long, device=self.device))
                n = sum(len(prepared[gi][2]) for gi in gis)
                rows = (torch.cat([quad_of[gi] for gi in gis]) if geometry == "dihedral"
                        else slice(start, start + n))
                params = {f: torch.cat([prepared[gi][3][f] for gi in gis]).unsqueeze(1)
                          for f in form.parameters}
                forms[geometry].append(A.FormRows(form, rows, params,
                                                  slice(first_row, first_row + n)))
        return self._pack(p, forms, atoms, quads, row_term, slot), names

    def _pack(self, p: Tensor, forms: dict[str, list[A.FormRows]],
              atoms: dict[str, list[Tensor]], quads: Tensor, row_term: list[Tensor],
              slot: dict[str, int]) -> A.Packed:
        """The slot index and pair tables around the per-form rows of :meth:`_build_packed`."""
        pairs = self._nb["pairs"]
        like = torch.zeros(0, dtype=torch.long, device=self.device)
        distance = torch.cat(atoms["distance"]) if atoms["distance"] else like.reshape(0, 2)
        angle = torch.cat(atoms["angle"]) if atoms["angle"] else like.reshape(0, 3)
        columns = [*angle.T, *quads.T, distance[:, 1], pairs[:, 1], distance[:, 0],
                   pairs[:, 0]]  # two-atom rows last, second atoms before first atoms
        bounds = np.cumsum([0] + [len(c) for c in columns]).tolist()
        cut = [slice(a, b) for a, b in itertools.pairwise(bounds)]
        first_pair = sum(len(r) for r in row_term)
        n_pairs = len(pairs)
        row_term += [torch.full_like(pairs[:, 0], slot["vdW"]),
                     torch.full_like(pairs[:, 0], slot["Electrostatics"])]
        qq, eps, sigma = self._pair_parameters(p)
        sigma6 = (sigma**2)**3  # as (sigma^2)^3: the kernel's rounding
        return A.Packed(
            index=torch.cat(columns), angle_slots=(cut[0], cut[1], cut[2]),
            quad_slots=(cut[3], cut[4], cut[5], cut[6]),
            two_atom_j=slice(cut[7].start, cut[8].stop), n_distance=len(distance),
            pair_qq=(F.COULOMB_CONSTANT_KCAL_MOL_A_E2 * qq).unsqueeze(1).contiguous(),
            pair_a=(4.0 * eps * sigma6 * sigma6).unsqueeze(1).contiguous(),
            pair_b=(4.0 * eps * sigma6).unsqueeze(1).contiguous(),
            pair_rows=(slice(first_pair, first_pair + n_pairs),
                       slice(first_pair + n_pairs, first_pair + 2 * n_pairs)),
            row_term=torch.cat(row_term), forms=forms)

    def _dihedral_layout(self) -> tuple[Tensor, dict[int, Tensor]]:
        """Unique dihedral quads over all torsion-like groups, and each group's row -> quad
        index (the dihedral and its gradient are computed once per quad)."""
        if not hasattr(self, "_dih_layout"):
            rows = [(gi, g["atoms"]) for gi, g in enumerate(self._groups)
                    if g["form"].geometry == "dihedral"]
            if rows:
                allq = torch.cat([a for _, a in rows])
                quads, inverse = torch.unique(allq, dim=0, return_inverse=True)
                maps, offset = {}, 0
                for gi, atoms in rows:
                    maps[gi] = inverse[offset:offset + len(atoms)]
                    offset += len(atoms)
            else:
                quads, maps = torch.zeros((0, 4), dtype=torch.long, device=self.device), {}
            self._dih_layout = (quads, maps)
        return self._dih_layout

    def _prepared_terms(self, p: Tensor) -> list[tuple[Form, str, Tensor, dict[str, Tensor]]]:
        """(form, term name, atoms, parameters) per group: the form's fields gathered from
        ``p`` with the energy scale folded into its scaled fields, plus ``periodicity``."""
        out = []
        for g in self._groups:
            form = g["form"]
            params = form.scaled(self._group_parameters(g, p), g["scale"])
            out.append((form, g["name"], g["atoms"], params))
        return out

    @staticmethod
    def _group_parameters(g: dict, p: Tensor) -> dict[str, Tensor]:
        params = {name: p[index] for name, index in g["index"].items()}
        if g["form"].periodic:
            params["periodicity"] = g["periodicity"]
        return params

    def _pair_parameters(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-pair (charge product * scale, epsilon * scale, sigma), differentiable."""
        nb = self._nb
        pairs = nb["pairs"]
        i, j = pairs[:, 0], pairs[:, 1]
        q = p[nb["charge"]]
        sig, eps = p[nb["sigma"]], p[nb["epsilon"]]
        pair_sigma, pair_eps = F.combine_lj(sig[i], sig[j], eps[i], eps[j], nb["rule"])
        if len(nb["nbfix_rows"]):
            pair_sigma = pair_sigma.index_put((nb["nbfix_rows"],), p[nb["nbfix_sigma"]])
            pair_eps = pair_eps.index_put((nb["nbfix_rows"],), p[nb["nbfix_epsilon"]])
        return q[i] * q[j] * nb["coulomb_scale"], pair_eps * nb["lj_scale"], pair_sigma

    # ------------------------------------------------------------------ internals
    @classmethod
    def _bonded(cls, g: dict, pos: Tensor, p: Tensor) -> Tensor:
        form = g["form"]
        x = F.GEOMETRY[form.geometry](pos, g["atoms"])
        return (form.energy(x, cls._group_parameters(g, p)) * g["scale"]).sum(-1)

    def _nonbonded(self, pos: Tensor, p: Tensor) -> dict[str, Tensor]:
        pairs = self._nb["pairs"]
        if len(pairs) == 0:
            zero = pos.new_zeros(pos.shape[0])
            return {"vdW": zero, "Electrostatics": zero}
        r = F.distances(pos, pairs)
        qq, eps, sigma = self._pair_parameters(p)
        vdw = F.lennard_jones_sigma(r, eps, sigma)
        return {"vdW": vdw.sum(-1), "Electrostatics": F.coulomb(r, qq).sum(-1)}
