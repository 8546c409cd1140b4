"""Parameterize a liquid's molecule once (conformer + charges cached on disk)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ffparam.assign import assign_parameters
from ffparam.chem import Molecule
from ffparam.errors import FFParamError
from ffparam.io.atomic import write_json_atomic
from ffparam.params.system import ParameterizedSystem


def prepare_system(text: str, forcefield: str = "sage", charges: str = "am1bcc",
                   name: str | None = None, cache_file: str | Path | None = None
                   ) -> ParameterizedSystem:
    """The molecule of ``text`` (SMILES or a molecule file) with one conformer,
    parameterized by ``forcefield`` with ``charges``.

    With ``cache_file`` (JSON), the conformer (Angstrom) and charges (e) are stored there
    and reused (no second AM1-BCC run on a resume; not for GAFF2, which types by charge).
    Errors (unparsable input, a term the force field cannot type) keep their type and
    name the liquid.
    """
    label = name or text
    try:
        molecule = Molecule.from_input(text)
        molecule.name = name or molecule.name
        reusable = cache_file is not None and forcefield.strip().lower() not in ("gaff2",
                                                                                  "gaff")
        cache = Path(cache_file) if reusable else None
        stored = _read_cache(cache, text, forcefield, charges)
        if stored is not None:
            molecule = molecule.with_conformers(np.array(stored["conformer"])[None])
            return assign_parameters(molecule, forcefield, charges=np.array(stored["charges"]))
        if molecule.n_conformers == 0:
            molecule = molecule.generate_conformers(1)
            molecule.name = name or molecule.name
        system = assign_parameters(molecule, forcefield, charges=charges)
    except FFParamError as exc:
        raise type(exc)(f"{label}: {exc}") from None
    if cache is not None:
        write_json_atomic(cache, {
            "input": text, "forcefield": forcefield, "charge_method": charges,
            "conformer": system.molecule.conformers[0].tolist(),
            "charges": system.charges().tolist()}, indent=None)
    return system


def _read_cache(path: Path | None, text: str, forcefield: str, charges: str) -> dict | None:
    if path is None or not path.exists():
        return None
    data = json.loads(path.read_text())
    if (data.get("input"), data.get("forcefield"), data.get("charge_method")) != (
            text, forcefield, charges):
        return None
    return data
