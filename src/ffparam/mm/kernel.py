"""Optional compiled kernel for the no-gradient energies + forces call of the MM engine.

The C source below (one fused loop per conformer over the bonded terms; the nonbonded pairs
vectorized across blocks of 16 conformers, with AVX2/AVX-512 clones picked at load time on
x86-64) is compiled once with the system C compiler (``$CC``, else ``cc``/``gcc``) into a
shared library cached under ``$FFPARAM_CACHE`` (default ``~/.cache/ffparam``) keyed by the
hash of the source and flags, and called through ctypes with the GIL released, conformer
slices in parallel over ``torch.get_num_threads()`` threads. It is plain C99 without torch
headers (compiles in about a second) and without ``-ffast-math`` (IEEE double arithmetic;
FMA contraction in the AVX clones changes results in the last bits only). If no compiler is
found or compilation fails, :func:`load` returns None and the engine uses its pure-PyTorch
path, which is the reference: the two agree to 1e-10 (tests/mm/test_engine_kernel.py). The
kernel has code for the term kinds ``bond``, ``morse``, ``angle``, ``torsion`` and
``improper`` (:attr:`ffparam.forms.Form.kernel`); a system with a form of any other kind
runs on the pure-PyTorch path.
``FFPARAM_MM_KERNEL=0`` disables the kernel.

Units: Angstrom, radians, kcal/mol, e.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import torch

Tensor = torch.Tensor

SOURCE = r"""
/* Fused energies + forces of every MM term form for a range of conformers (the optional
 * compiled fast path of ffparam.mm.engine; the pure-PyTorch path in analytic.py is the
 * reference and the two agree to 1e-10).
 *
 * One loop over the terms of each conformer: no intermediate (conformers x terms) arrays,
 * no separate gather and scatter passes. Units as in the engine: Angstrom, radians,
 * kcal/mol, e. Formulas are those of analytic.py (closed-form derivatives). Plain C99 in
 * double precision, compiled without -ffast-math so that the arithmetic is IEEE.
 *
 * Layout: pos (C, N, 3), grad (C, N, 3) = dE/dx (zeroed here), energy (C, n_slots) per-term
 * energies (zeroed here). Index arrays are int64, parameters double; each term row carries
 * the slot (column of energy) of the term it belongs to.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n_atoms, n_slots;
    int64_t n_bond; const int64_t *bond_idx, *bond_slot; const double *bond_par;   /* k, r0 */
    int64_t n_morse; const int64_t *morse_idx, *morse_slot; const double *morse_par; /* D, a, r0 */
    int64_t n_angle; const int64_t *angle_idx, *angle_slot; const double *angle_par; /* k, t0 */
    /* quads: 4 atoms each; quad_phi 1 where a row of the quad needs phi itself; the rows
     * of quad q are quad_start[q] .. quad_start[q + 1] - 1 */
    int64_t n_quad; const int64_t *quad_idx, *quad_phi, *quad_start;
    /* torsion rows, sorted by quad: quad, slot, kind, 5 parameters (see torsions_block) */
    int64_t n_tors; const int64_t *tors_quad, *tors_slot, *tors_kind; const double *tors_par;
    /* pairs: par qq * Coulomb constant * scale, A = 4 eps sigma^12, B = 4 eps sigma^6 */
    int64_t n_pair; const int64_t *pair_idx; const double *pair_par;
    int64_t vdw_slot, elec_slot;
} ffp_terms;

static inline void add3(double *g, int64_t a, double s, const double *v) {
    g[3 * a] += s * v[0]; g[3 * a + 1] += s * v[1]; g[3 * a + 2] += s * v[2];
}

static inline void cross(const double *a, const double *b, double *out) {
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static inline double dot(const double *a, const double *b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static inline void diff(const double *x, int64_t i, int64_t j, double *d) { /* x_j - x_i */
    d[0] = x[3 * j] - x[3 * i]; d[1] = x[3 * j + 1] - x[3 * i + 1];
    d[2] = x[3 * j + 2] - x[3 * i + 2];
}

static void bonds(const ffp_terms *t, const double *x, double *g, double *e) {
    double d[3];
    for (int64_t b = 0; b < t->n_bond; b++) {
        int64_t i = t->bond_idx[2 * b], j = t->bond_idx[2 * b + 1];
        double k = t->bond_par[2 * b], r0 = t->bond_par[2 * b + 1];
        diff(x, i, j, d);
        double r = sqrt(dot(d, d)), dr = r - r0;
        e[t->bond_slot[b]] += 0.5 * (k * dr * dr);
        double c = k * dr / r;
        add3(g, j, c, d); add3(g, i, -c, d);
    }
    for (int64_t b = 0; b < t->n_morse; b++) {
        int64_t i = t->morse_idx[2 * b], j = t->morse_idx[2 * b + 1];
        const double *p = t->morse_par + 3 * b;
        diff(x, i, j, d);
        double r = sqrt(dot(d, d)), ex = exp(-p[1] * (r - p[2]));
        e[t->morse_slot[b]] += p[0] * (1.0 - ex) * (1.0 - ex);
        double c = 2.0 * p[0] * p[1] * ex * (1.0 - ex) / r;
        add3(g, j, c, d); add3(g, i, -c, d);
    }
}

/* Nonbonded pairs for a block of BLOCK conformers, vectorized across the conformers: the
 * block's positions as xs[(3 a + k) BLOCK + c] (atom a, component k, conformer c),
 * gradients gs likewise, per-conformer energies ev, ee. No branches, no reductions, fixed
 * trip count: the compiler vectorizes the inner loop (omp simd) with IEEE arithmetic. */
#ifndef BLOCK
#define BLOCK 16
#endif
/* x86-64 builds get AVX2 and AVX-512 versions of the pair loop, picked at load time for
 * the CPU at hand (GCC/Clang target_clones); other targets build only the baseline. */
#if defined(FFP_CLONES)
#define FFP_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", \
                                                     "default")))
#else
#define FFP_SIMD_CLONES
#endif
FFP_SIMD_CLONES static void pairs_block(const ffp_terms *t, const double *xs, double *gs,
                                        double *restrict ev, double *restrict ee) {
    for (int64_t k = 0; k < t->n_pair; k++) {
        const double *p = t->pair_par + 3 * k;
        const double qq = p[0], a = p[1], b = p[2], a12 = 12.0 * p[1], b6 = 6.0 * p[2];
        /* i != j (checked by the engine), so the rows do not overlap */
        const double *restrict xi = xs + 3 * BLOCK * t->pair_idx[2 * k];
        const double *restrict xj = xs + 3 * BLOCK * t->pair_idx[2 * k + 1];
        double *restrict gi = gs + 3 * BLOCK * t->pair_idx[2 * k];
        double *restrict gj = gs + 3 * BLOCK * t->pair_idx[2 * k + 1];
#pragma omp simd
        for (int c = 0; c < BLOCK; c++) {
            double dx = xj[c] - xi[c], dy = xj[BLOCK + c] - xi[BLOCK + c];
            double dz = xj[2 * BLOCK + c] - xi[2 * BLOCK + c];
            double inv_r2 = 1.0 / (dx * dx + dy * dy + dz * dz);
            double inv_r6 = inv_r2 * inv_r2 * inv_r2;
            double el = qq * sqrt(inv_r2);
            ev[c] += inv_r6 * (a * inv_r6 - b);
            ee[c] += el;
            double f = -(inv_r6 * (a12 * inv_r6 - b6) + el) * inv_r2;
            gj[c] += f * dx; gj[BLOCK + c] += f * dy; gj[2 * BLOCK + c] += f * dz;
            gi[c] -= f * dx; gi[BLOCK + c] -= f * dy; gi[2 * BLOCK + c] -= f * dz;
        }
    }
}

/* Torsions of a block of BLOCK conformers (layout of pairs_block; es: per-term energies
 * (n_slots, BLOCK)). Rows are grouped by quad (quad_start, CSR). Per quad, vectorized over
 * the conformers: dphi/dx_i and dphi/dx_l (Blondel & Karplus), the p and q coefficients of
 * the middle atoms, and cos phi, sin phi from the two atan2 arguments; phi itself (atan2)
 * only where a row needs it (quad_phi). Row kinds: 2, k (1 + cos(n phi - phase)) for
 * integer n >= 0 with cos(n phi), sin(n phi) by the Chebyshev recurrence (no trig calls);
 * 0, the same for any n through cos/sin; 1, harmonic improper k/2 wrap(phi - phi0)^2 with
 * the wrap into [-pi, pi) of torch.remainder. par: k, n, phase (phi0), cos(phase),
 * sin(phase). */
FFP_SIMD_CLONES static void torsions_block(const ffp_terms *t, const double *xs, double *gs,
                                           double *es) {
    const double pi = 3.14159265358979323846;
    double gi[3][BLOCK], gl[3][BLOCK], pp[BLOCK], qq[BLOCK], cs[BLOCK], sn[BLOCK];
    double phi[BLOCK], px[BLOCK], py[BLOCK], de[BLOCK], cn[BLOCK], sn_n[BLOCK];
    double cp[BLOCK], sp[BLOCK];
    for (int64_t q = 0; q < t->n_quad; q++) {
        int64_t r0 = t->quad_start[q], r1 = t->quad_start[q + 1];
        if (r0 == r1) continue;
        const double *x0 = xs + 3 * BLOCK * t->quad_idx[4 * q];
        const double *x1 = xs + 3 * BLOCK * t->quad_idx[4 * q + 1];
        const double *x2 = xs + 3 * BLOCK * t->quad_idx[4 * q + 2];
        const double *x3 = xs + 3 * BLOCK * t->quad_idx[4 * q + 3];
#pragma omp simd
        for (int c = 0; c < BLOCK; c++) {  /* written out, no branches: vectorizes */
            double b1x = x1[c] - x0[c], b1y = x1[BLOCK + c] - x0[BLOCK + c];
            double b1z = x1[2 * BLOCK + c] - x0[2 * BLOCK + c];
            double b2x = x2[c] - x1[c], b2y = x2[BLOCK + c] - x1[BLOCK + c];
            double b2z = x2[2 * BLOCK + c] - x1[2 * BLOCK + c];
            double b3x = x3[c] - x2[c], b3y = x3[BLOCK + c] - x2[BLOCK + c];
            double b3z = x3[2 * BLOCK + c] - x2[2 * BLOCK + c];
            double mx = b1y * b2z - b1z * b2y, my = b1z * b2x - b1x * b2z;
            double mz = b1x * b2y - b1y * b2x;
            double nx = b2y * b3z - b2z * b3y, ny = b2z * b3x - b2x * b3z;
            double nz = b2x * b3y - b2y * b3x;
            double b2_sq = b2x * b2x + b2y * b2y + b2z * b2z, b2_len = sqrt(b2_sq);
            double mm = mx * mx + my * my + mz * mz, nn = nx * nx + ny * ny + nz * nz;
            double si = -b2_len / (mm > 1e-24 ? mm : 1e-24);
            double sl = b2_len / (nn > 1e-24 ? nn : 1e-24);
            gi[0][c] = si * mx; gi[1][c] = si * my; gi[2][c] = si * mz;
            gl[0][c] = sl * nx; gl[1][c] = sl * ny; gl[2][c] = sl * nz;
            pp[c] = (b1x * b2x + b1y * b2y + b1z * b2z) / b2_sq;
            qq[c] = (b3x * b2x + b3y * b2y + b3z * b2z) / b2_sq;
            py[c] = b2_len * (b1x * nx + b1y * ny + b1z * nz);
            px[c] = mx * nx + my * ny + mz * nz;
            double h = sqrt(px[c] * px[c] + py[c] * py[c]);
            double inv_h = 1.0 / (h > 0.0 ? h : 1.0);
            cs[c] = h > 0.0 ? px[c] * inv_h : 1.0;
            sn[c] = py[c] * inv_h;
            de[c] = 0.0;
        }
        if (t->quad_phi[q])
            for (int c = 0; c < BLOCK; c++) phi[c] = atan2(py[c], px[c]);
        for (int64_t row = r0; row < r1; row++) {
            const double *p = t->tors_par + 5 * row;
            double *e = es + BLOCK * t->tors_slot[row];
            int64_t kind = t->tors_kind[row], n = (int64_t)p[1];
            if (kind == 2) {  /* cos(k phi), sin(k phi) for k = 1 .. n, lanes inside */
                for (int c = 0; c < BLOCK; c++) {
                    cn[c] = n ? cs[c] : 1.0; sn_n[c] = n ? sn[c] : 0.0;
                    cp[c] = 1.0; sp[c] = 0.0;
                }
                for (int64_t k = 1; k < n; k++) {
#pragma omp simd
                    for (int c = 0; c < BLOCK; c++) {
                        double c2 = 2.0 * cs[c] * cn[c] - cp[c];
                        double s2 = 2.0 * cs[c] * sn_n[c] - sp[c];
                        cp[c] = cn[c]; sp[c] = sn_n[c]; cn[c] = c2; sn_n[c] = s2;
                    }
                }
#pragma omp simd
                for (int c = 0; c < BLOCK; c++) {
                    e[c] += p[0] * (1.0 + (cn[c] * p[3] + sn_n[c] * p[4]));
                    de[c] += -p[0] * p[1] * (sn_n[c] * p[3] - cn[c] * p[4]);
                }
            } else if (kind == 0) {
                for (int c = 0; c < BLOCK; c++) {
                    double arg = p[1] * phi[c] - p[2];
                    e[c] += p[0] * (1.0 + cos(arg));
                    de[c] += -p[0] * p[1] * sin(arg);
                }
            } else {
                for (int c = 0; c < BLOCK; c++) {
                    double w = fmod(phi[c] - p[2] + pi, 2.0 * pi);
                    if (w < 0.0) w += 2.0 * pi;
                    double dphi = w - pi;
                    e[c] += 0.5 * p[0] * dphi * dphi;
                    de[c] += p[0] * dphi;
                }
            }
        }
        double *g0 = gs + 3 * BLOCK * t->quad_idx[4 * q];
        double *g1 = gs + 3 * BLOCK * t->quad_idx[4 * q + 1];
        double *g2 = gs + 3 * BLOCK * t->quad_idx[4 * q + 2];
        double *g3 = gs + 3 * BLOCK * t->quad_idx[4 * q + 3];
        for (int k = 0; k < 3; k++) {
#pragma omp simd
            for (int c = 0; c < BLOCK; c++) {
                double a = gi[k][c], b = gl[k][c], s = de[c];
                g0[k * BLOCK + c] += s * a;
                g1[k * BLOCK + c] += s * (-(1.0 + pp[c]) * a + qq[c] * b);
                g2[k * BLOCK + c] += s * (pp[c] * a - (1.0 + qq[c]) * b);
                g3[k * BLOCK + c] += s * b;
            }
        }
    }
}

/* Harmonic angles k/2 (theta - theta0)^2 of a block of BLOCK conformers (layout of
 * pairs_block), theta = atan2(|u x v|, u.v) with u = x_i - x_j, v = x_k - x_j; a linear
 * angle (|u x v| <= 1e-12) gets no force. Geometry and forces vectorized over the block,
 * atan2 per conformer. */
FFP_SIMD_CLONES static void angles_block(const ffp_terms *t, const double *xs, double *gs,
                                         double *es) {
    double n_len[BLOCK], uv[BLOCK], theta[BLOCK];
    for (int64_t a = 0; a < t->n_angle; a++) {
        const int64_t *idx = t->angle_idx + 3 * a;
        const double k = t->angle_par[2 * a], t0 = t->angle_par[2 * a + 1];
        const double *xi = xs + 3 * BLOCK * idx[0], *xj = xs + 3 * BLOCK * idx[1];
        const double *xk = xs + 3 * BLOCK * idx[2];
        double *gi = gs + 3 * BLOCK * idx[0], *gj = gs + 3 * BLOCK * idx[1];
        double *gk = gs + 3 * BLOCK * idx[2], *e = es + BLOCK * t->angle_slot[a];
#pragma omp simd
        for (int c = 0; c < BLOCK; c++) {
            double ux = xi[c] - xj[c], uy = xi[BLOCK + c] - xj[BLOCK + c];
            double uz = xi[2 * BLOCK + c] - xj[2 * BLOCK + c];
            double vx = xk[c] - xj[c], vy = xk[BLOCK + c] - xj[BLOCK + c];
            double vz = xk[2 * BLOCK + c] - xj[2 * BLOCK + c];
            double nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
            n_len[c] = sqrt(nx * nx + ny * ny + nz * nz);
            uv[c] = ux * vx + uy * vy + uz * vz;
        }
        for (int c = 0; c < BLOCK; c++) theta[c] = atan2(n_len[c], uv[c]);
#pragma omp simd
        for (int c = 0; c < BLOCK; c++) {
            double ux = xi[c] - xj[c], uy = xi[BLOCK + c] - xj[BLOCK + c];
            double uz = xi[2 * BLOCK + c] - xj[2 * BLOCK + c];
            double vx = xk[c] - xj[c], vy = xk[BLOCK + c] - xj[BLOCK + c];
            double vz = xk[2 * BLOCK + c] - xj[2 * BLOCK + c];
            double nx = uy * vz - uz * vy, ny = uz * vx - ux * vz, nz = ux * vy - uy * vx;
            double dtheta = theta[c] - t0;
            e[c] += 0.5 * (k * dtheta * dtheta);
            int bent = n_len[c] > 1e-12;
            double coef = bent ? k * dtheta / (bent ? n_len[c] : 1.0) : 0.0;
            double su = coef / (ux * ux + uy * uy + uz * uz);
            double sv = coef / (vx * vx + vy * vy + vz * vz);
            double ix = su * (uy * nz - uz * ny), iy = su * (uz * nx - ux * nz);
            double iz = su * (ux * ny - uy * nx);
            double kx = sv * (ny * vz - nz * vy), ky = sv * (nz * vx - nx * vz);
            double kz = sv * (nx * vy - ny * vx);
            gi[c] += ix; gi[BLOCK + c] += iy; gi[2 * BLOCK + c] += iz;
            gk[c] += kx; gk[BLOCK + c] += ky; gk[2 * BLOCK + c] += kz;
            gj[c] -= ix + kx; gj[BLOCK + c] -= iy + ky; gj[2 * BLOCK + c] -= iz + kz;
        }
    }
}

/* Angles, torsions and pairs of conformers [b0, b0 + nb), nb <= BLOCK, vectorized across the
 * conformers (a short block repeats its last conformer in the unused lanes, whose results
 * are dropped). work: 2 (3 N + n_slots) BLOCK doubles. */
static void block(const ffp_terms *t, int64_t b0, int64_t nb, const double *pos,
                  double *grad, double *energy, double *work) {
    int64_t stride = 3 * t->n_atoms;
    double *xs = work, *gs = work + stride * BLOCK, *es = gs + stride * BLOCK;
    for (int c = 0; c < BLOCK; c++) {
        const double *x = pos + (b0 + (c < nb ? c : nb - 1)) * stride;
        for (int64_t s = 0; s < stride; s++) xs[s * BLOCK + c] = x[s];
    }
    memset(gs, 0, sizeof(double) * (size_t)(stride * BLOCK));
    memset(es, 0, sizeof(double) * (size_t)(t->n_slots * BLOCK));
    angles_block(t, xs, gs, es);
    torsions_block(t, xs, gs, es);
    pairs_block(t, xs, gs, es + BLOCK * t->vdw_slot, es + BLOCK * t->elec_slot);
    for (int64_t c = 0; c < nb; c++) {
        double *g = grad + (b0 + c) * stride, *e = energy + (b0 + c) * t->n_slots;
        for (int64_t s = 0; s < stride; s++) g[s] += gs[s * BLOCK + c];
        for (int64_t k = 0; k < t->n_slots; k++) e[k] += es[k * BLOCK + c];
    }
}

/* Conformers [c0, c1) of pos; returns 0, or 1 if scratch memory could not be allocated. */
int ffp_evaluate(const ffp_terms *t, int64_t c0, int64_t c1, const double *pos,
                 double *grad, double *energy) {
    int64_t stride = 3 * t->n_atoms;
    double *work = malloc((size_t)(2 * stride + t->n_slots) * BLOCK * sizeof(double));
    if (work == NULL) return 1;
    for (int64_t b0 = c0; b0 < c1; b0 += BLOCK) {
        int64_t nb = c1 - b0 < BLOCK ? c1 - b0 : BLOCK;
        for (int64_t c = b0; c < b0 + nb; c++) {
            const double *x = pos + c * stride;
            double *g = grad + c * stride, *e = energy + c * t->n_slots;
            memset(g, 0, sizeof(double) * (size_t)stride);
            memset(e, 0, sizeof(double) * (size_t)t->n_slots);
            bonds(t, x, g, e);
        }
        block(t, b0, nb, pos, grad, energy, work);
    }
    free(work);
    return 0;
}
"""

# -fopenmp-simd: only the `omp simd` pragmas (no OpenMP runtime); -fno-math-errno lets sqrt
# vectorize (errno is never read); -fno-trapping-math lets branch-free selects vectorize (no
# FP traps are enabled; results unchanged). No -ffast-math: IEEE double arithmetic.
FLAGS = ["-O3", "-std=c99", "-fPIC", "-shared", "-fopenmp-simd", "-fno-math-errno",
         "-fno-trapping-math"]

MIN_PER_THREAD = 64
"""Conformers per thread below which :func:`evaluate` does not split a call."""

_lock = threading.Lock()
_state: dict[str, object] = {}


@dataclass
class KernelTerms:
    """Every term of a system with its parameters, flattened per kind (int64 / float64,
    contiguous, CPU). ``*_slot`` is the column of the per-term energy each row adds to.

    bond_par: (k, r0); morse_par: (D, a, r0); angle_par: (k, theta0); tors_par: (k, n,
    phase, cos phase, sin phase) for kinds 0 (periodic) and 2 (periodic, integer n), (k,
    unused, phi0, unused, unused) for kind 1 (harmonic improper), rows sorted by quad;
    quad_phi: 1 for quads with a row of kind 0 or 1 (they need phi itself, the others only
    cos and sin phi); quad_start (n_quad + 1,): first row of each quad;
    pair_par: (332.0637 q_i q_j scale, A = 4 eps sigma^12, B = 4 eps sigma^6) per pair with
    its mixed, scaled eps and sigma (kcal/mol, Angstrom); pair_idx (n_pairs, 2) with i != j.
    """

    n_atoms: int
    n_slots: int
    bond_idx: Tensor
    bond_slot: Tensor
    bond_par: Tensor
    morse_idx: Tensor
    morse_slot: Tensor
    morse_par: Tensor
    angle_idx: Tensor
    angle_slot: Tensor
    angle_par: Tensor
    quad_idx: Tensor
    quad_phi: Tensor
    quad_start: Tensor
    tors_quad: Tensor
    tors_slot: Tensor
    tors_kind: Tensor
    tors_par: Tensor
    pair_idx: Tensor
    pair_par: Tensor
    vdw_slot: int
    elec_slot: int

    def struct(self) -> ctypes.Structure:
        """The ``ffp_terms`` C struct pointing into these tensors (keep self alive)."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = ctypes.c_void_p(value.data_ptr())
            values[f.name] = value
        counts = {"n_bond": len(self.bond_slot), "n_morse": len(self.morse_slot),
                  "n_angle": len(self.angle_slot), "n_quad": len(self.quad_idx),
                  "n_tors": len(self.tors_slot), "n_pair": len(self.pair_par)}
        return _Struct(**values, **counts)


class _Struct(ctypes.Structure):
    _fields_ = [  # the layout of ffp_terms in SOURCE, in order
        ("n_atoms", ctypes.c_int64), ("n_slots", ctypes.c_int64),
        ("n_bond", ctypes.c_int64), ("bond_idx", ctypes.c_void_p),
        ("bond_slot", ctypes.c_void_p), ("bond_par", ctypes.c_void_p),
        ("n_morse", ctypes.c_int64), ("morse_idx", ctypes.c_void_p),
        ("morse_slot", ctypes.c_void_p), ("morse_par", ctypes.c_void_p),
        ("n_angle", ctypes.c_int64), ("angle_idx", ctypes.c_void_p),
        ("angle_slot", ctypes.c_void_p), ("angle_par", ctypes.c_void_p),
        ("n_quad", ctypes.c_int64), ("quad_idx", ctypes.c_void_p),
        ("quad_phi", ctypes.c_void_p), ("quad_start", ctypes.c_void_p),
        ("n_tors", ctypes.c_int64), ("tors_quad", ctypes.c_void_p),
        ("tors_slot", ctypes.c_void_p), ("tors_kind", ctypes.c_void_p),
        ("tors_par", ctypes.c_void_p),
        ("n_pair", ctypes.c_int64), ("pair_idx", ctypes.c_void_p),
        ("pair_par", ctypes.c_void_p),
        ("vdw_slot", ctypes.c_int64), ("elec_slot", ctypes.c_int64),
    ]


def _cache_dir() -> Path:
    root = os.environ.get("FFPARAM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ffparam")
    return Path(root) / "mm_kernel"


def _compile(target: Path) -> None:
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (set $CC)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source = Path(tmp) / "kernel.c"
        source.write_text(SOURCE)
        built = Path(tmp) / target.name
        command = [compiler, *FLAGS, "-o", str(built), str(source), "-lm"]
        try:  # with CPU-specific clones of the pair loop where the compiler supports them
            subprocess.run([*command, "-DFFP_CLONES"], check=True, capture_output=True,
                           timeout=300)
        except subprocess.CalledProcessError:
            subprocess.run(command, check=True, capture_output=True, timeout=300)
        os.replace(built, target)  # atomic: concurrent processes never see a partial file


def load() -> ctypes.CDLL | None:
    """The compiled kernel (compiled on first use), or None if disabled or unavailable
    (one warning says why; the engine then uses its pure-PyTorch path)."""
    if os.environ.get("FFPARAM_MM_KERNEL", "1") == "0":
        return None
    with _lock:
        if "lib" not in _state:
            _state["lib"] = _load_or_compile()
        return _state["lib"]  # type: ignore[return-value]


def _load_or_compile() -> ctypes.CDLL | None:
    digest = hashlib.sha256((SOURCE + " ".join(FLAGS) + "clones").encode()).hexdigest()[:16]
    target = _cache_dir() / f"ffparam_mm_{digest}.so"
    try:
        if not target.exists():
            _compile(target)
        lib = ctypes.CDLL(str(target))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        warnings.warn(f"MM kernel unavailable, using the pure-PyTorch path: {exc} "
                      f"{detail.decode(errors='replace')[:500]}", RuntimeWarning, stacklevel=3)
        return None
    lib.ffp_evaluate.restype = ctypes.c_int
    lib.ffp_evaluate.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def evaluate(lib: ctypes.CDLL, terms: KernelTerms, pos: Tensor,
             threads: int | None = None) -> tuple[Tensor, Tensor]:
    """Per-term energies (C, n_slots) kcal/mol and dE/dx (C, N, 3) kcal/mol/Angstrom of
    float64 CPU positions (C, N, 3) Angstrom. Conformer slices run in ``threads`` threads
    (default ``torch.get_num_threads()``); ctypes releases the GIL during each call."""
    pos = pos.detach().to(torch.float64).contiguous()
    n_conf = pos.shape[0]
    grad = torch.empty_like(pos)
    energy = pos.new_empty((n_conf, terms.n_slots))
    struct = terms.struct()
    ref = ctypes.byref(struct)

    def run(c0: int, c1: int) -> int:
        return lib.ffp_evaluate(ref, c0, c1, pos.data_ptr(), grad.data_ptr(),
                                energy.data_ptr())

    # a thread per at least MIN_PER_THREAD conformers: small calls (an optimizer's inner
    # loop) would spend more on starting threads than on the evaluation (~6 us/conformer)
    threads = max(1, min(threads or torch.get_num_threads(), n_conf // MIN_PER_THREAD))
    if threads == 1:
        codes = [run(0, n_conf)]
    else:
        bounds = [n_conf * k // threads for k in range(threads + 1)]
        with ThreadPoolExecutor(threads) as pool:
            codes = list(pool.map(run, bounds[:-1], bounds[1:]))
    if any(codes):
        raise MemoryError("MM kernel could not allocate its scratch memory")
    return energy, grad
