"""Functional forms against closed-form values and each other."""

import math

import numpy as np
import pytest
import torch

from ffparam.forms import FORMS
from ffparam.mm import terms as F
from ffparam.params import conventions as C


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_dihedral_sign_and_value():
    # trans (180) and a +60 deg gauche built explicitly; sign convention of OpenMM/IUPAC:
    # looking down j->k, l rotated clockwise from i is positive.
    pos = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.5],
                         [math.cos(math.radians(60)), math.sin(math.radians(60)), 1.5]]],
                       dtype=torch.float64)
    phi = F.dihedrals(pos, torch.tensor([[0, 1, 2, 3]]))
    assert phi.item() == pytest.approx(math.radians(60.0), abs=1e-12)
    pos[0, 3, 1] *= -1
    assert F.dihedrals(pos, torch.tensor([[0, 1, 2, 3]])).item() == pytest.approx(
        math.radians(-60.0), abs=1e-12)


def test_angle_linear_and_right():
    pos = torch.tensor([[[1.0, 0, 0], [0, 0, 0], [0, 1.0, 0], [-2.0, 0, 0]]],
                       dtype=torch.float64)
    ang = F.angles(pos, torch.tensor([[0, 1, 2], [0, 1, 3]]))
    assert ang[0, 0].item() == pytest.approx(math.pi / 2)
    assert ang[0, 1].item() == pytest.approx(math.pi)


@pytest.mark.parametrize("sigma,epsilon", [(3.4, 0.086), (2.6, 0.0157), (3.9, 0.4)])
def test_lj_sigma_and_rmin_forms_agree(sigma, epsilon):
    r = torch.linspace(2.5, 12.0, 200, dtype=torch.float64)
    rmin = C.lj_size_from_sigma(sigma, "rmin")
    e_sigma = F.lennard_jones_sigma(r, t(epsilon), t(sigma))
    e_rmin = F.lennard_jones_rmin(r, t(epsilon), t(rmin))
    torch.testing.assert_close(e_sigma, e_rmin, rtol=1e-12, atol=1e-14)
    # zero crossing at sigma, minimum -epsilon at rmin
    assert F.lennard_jones_sigma(t(sigma), t(epsilon),
                                 t(sigma)).item() == pytest.approx(0, abs=1e-14)
    assert F.lennard_jones_rmin(t(rmin), t(epsilon),
                                t(rmin)).item() == pytest.approx(-epsilon)


def test_lj_size_conventions_round_trip():
    for conv in C.LJ_SIZE_CONVENTIONS:
        assert C.lj_size_to_sigma(C.lj_size_from_sigma(3.1, conv), conv) == pytest.approx(3.1)
    # AMBER C (parm99) rmin_half 1.9080 A <-> sigma 3.39967 A (published in leaprc/ffxml)
    assert C.lj_size_to_sigma(1.9080, "rmin_half") == pytest.approx(3.39967, abs=1e-5)


def test_harmonic_conventions_round_trip():
    # AMBER C-C bond K = 310 kcal/mol/A^2 (E = K dx^2) is k = 620 in E = k/2 dx^2
    assert C.harmonic_to_internal(310.0, "K") == 620.0
    assert C.harmonic_from_internal(620.0, "K") == 310.0
    x = torch.tensor(1.6, dtype=torch.float64)
    e_internal = FORMS.get("harmonic_bond").energy(x, {"k": t(620.0), "length": t(1.526)})
    assert e_internal.item() == pytest.approx(310.0 * (1.6 - 1.526) ** 2)


def test_idivf_conversion():
    assert C.torsion_k_to_internal(1.4, 9.0) == pytest.approx(1.4 / 9.0)
    assert C.torsion_k_from_internal(C.torsion_k_to_internal(1.4, 9.0), 9.0) == pytest.approx(1.4)


def test_harmonic_improper_wraps():
    phi = torch.tensor([math.pi - 0.1, -math.pi + 0.1], dtype=torch.float64)
    e = FORMS.get("harmonic_improper").energy(phi, {"k": t(2.0), "angle": t(math.pi)})
    np.testing.assert_allclose(e.numpy(), [0.01, 0.01], rtol=1e-10)


def test_safe_sqrt_gradient_at_zero():
    x = torch.tensor([0.0, 4.0], dtype=torch.float64, requires_grad=True)
    F.safe_sqrt(x).sum().backward()
    assert torch.all(torch.isfinite(x.grad))
    assert x.grad[1].item() == pytest.approx(0.25)
