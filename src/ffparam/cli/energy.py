"""``ffparam energy`` and ``ffparam assign``: per-term MM energies and parameter assignment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ffparam.chem.molecule import Molecule
from ffparam.cli.options import ApiField, PlainHelpCommand, api_option, at_least, uses_api
from ffparam.errors import InputError

FF_HELP = "sage | gaff2 | mmff94 | uff | openff-X.Y.Z | PATH.offxml"
ASSIGN = "ffparam.assign:assign_parameters"
FIELDS = {"ff": ApiField(ASSIGN, "forcefield"), "charges": ApiField(ASSIGN, "charges")}
"""`energy`/`assign` option -> the :func:`~ffparam.assign.assign_parameters` keyword."""


def load_input_molecule(text: str, charge: int | None, conformers: int | None) -> Molecule:
    """Read INPUT (file or SMILES); generate ``conformers`` ETKDG conformers if asked or if
    the input has no coordinates."""
    molecule = Molecule.from_input(text, charge=charge)
    if conformers is not None and conformers < 1:
        raise InputError("--conformers must be at least 1")
    if conformers or molecule.n_conformers == 0:
        molecule = molecule.generate_conformers(conformers or 1)
    return molecule


def energy_table(molecule: Molecule, forcefield: str, charges: str | None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """Total and per-term energies (kcal/mol) for every conformer, and a provenance label."""
    name = forcefield.lower()
    if name in ("mmff94", "uff"):
        from ffparam.assign.rdkit_models import RDKitEnergyModel

        if charges:
            raise InputError(f"--charges does not apply to {name} (it has its own charges)")
        result = RDKitEnergyModel(molecule, name).compute(molecule.conformers)
        return np.asarray(result.energy), {k: np.asarray(v) for k, v in result.terms.items()}, \
            name
    from ffparam.assign import assign_parameters
    from ffparam.mm import MMEngine

    system = assign_parameters(molecule, forcefield, charges=charges)
    result = MMEngine(system).compute(molecule.conformers, forces=False)
    return result.energy.numpy(), result.terms_numpy(), system.source


def is_imported(input: str, ff: str) -> bool:
    """True when INPUT is an existing force field (prmtop/top/psf, or a PDB with ``--ff``
    OpenMM ffxml files) rather than a molecule to assign parameters to."""
    from ffparam.assign.import_files import import_format

    ffxml = str(ff).lower().endswith(".xml") and not str(ff).lower().endswith(".offxml")
    kind = import_format(input)
    return kind in ("amber", "gromacs", "charmm") or (kind == "ffxml" and ffxml)


def imported_system(input: str, ff: str, coords: Path | None, params: list[Path] | None,
                    need_coordinates: bool = True):
    """The ParameterizedSystem of an existing force field named on the command line
    (INPUT, ``--ff`` ffxml files for a PDB, ``--params`` CHARMM files, ``--coords``)."""
    from ffparam.assign.import_files import import_force_field, import_format

    files = list(params or [])
    if import_format(input) == "ffxml":
        if not is_imported(input, ff):
            raise InputError(f"{Path(input).name}: give the OpenMM force field files with "
                             "--ff FILE.xml[,FILE.xml...]")
        files = [Path(f.strip()) for f in str(ff).split(",") if f.strip()] + files
    elif str(ff).lower() not in ("", str(FIELDS["ff"].cli_default()).lower()):
        raise InputError(f"--ff {ff} does not apply to {Path(input).name}: the file is the "
                         "force field")
    system = import_force_field(input, coords, files)
    if need_coordinates and system.molecule.n_conformers == 0:
        raise InputError(f"no coordinates for {Path(input).name}: give --coords FILE or put "
                         "the coordinate file of the same name beside it")
    return system


def print_energies(title: str, total: np.ndarray, terms: dict[str, np.ndarray]) -> None:
    """The per-conformer energy table (kcal/mol)."""
    table = Table(title=title)
    table.add_column("conformer", justify="right")
    for name in terms:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right", style="bold")
    for c in range(len(total)):
        table.add_row(str(c), *(f"{terms[n][c]:.4f}" for n in terms), f"{total[c]:.4f}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    @app.command("energy", cls=PlainHelpCommand)
    @uses_api(FIELDS)
    def energy_command(
        input: str = typer.Argument(..., help="SMILES or molecule file (sdf, mol, pdb, xyz), "
                                              "or a force field: prmtop, top, psf (or a pdb "
                                              "with --ff ffxml files)"),
        ff: str = api_option(FIELDS, "ff", "--ff", help=FF_HELP),
        charges: str = api_option(FIELDS, "charges", "--charges",
                                  help="am1bcc | gasteiger | mmff94 (default: the force "
                                       "field's)"),
        conformers: int = typer.Option(None, "--conformers", callback=at_least(1),
                                       help="generate N conformers"),
        charge: int = typer.Option(None, "--charge", help="total charge (XYZ/PDB input)"),
        as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
        coords: Path = typer.Option(None, "--coords",
                                    help="coordinates of a prmtop/top/psf (default: the "
                                         "inpcrd/rst7, gro or crd/pdb of the same name)"),
        params: list[Path] = typer.Option(None, "--params",
                                          help="CHARMM prm/rtf/str file of a psf "
                                               "(repeatable)"),
    ) -> None:
        """Per-term potential energies (kcal/mol) of each conformer."""
        if is_imported(input, ff):
            from ffparam.mm import MMEngine

            system = imported_system(input, ff, coords, params)
            molecule = system.molecule
            result = MMEngine(system).compute(molecule.conformers, forces=False)
            total, terms, source = result.energy.numpy(), result.terms_numpy(), system.source
        else:
            if coords is not None or params:
                raise InputError("--coords and --params apply to prmtop/top/psf input only")
            molecule = load_input_molecule(input, charge, conformers)
            total, terms, source = energy_table(molecule, ff, charges)
        if as_json:
            payload = {
                "units": "kcal/mol",
                "molecule": molecule.to_smiles(),
                "forcefield": source,
                "conformers": [
                    {"total": float(total[c]),
                     "terms": {k: float(v[c]) for k, v in terms.items()}}
                    for c in range(len(total))
                ],
            }
            typer.echo(json.dumps(payload, indent=1))
            return
        print_energies(f"{molecule.name} ({molecule.formula}) with {source}, kcal/mol",
                       total, terms)

    @app.command("assign", cls=PlainHelpCommand)
    @uses_api(FIELDS)
    def assign_command(
        input: str = typer.Argument(None, help="SMILES or molecule file"),
        ff: str = api_option(FIELDS, "ff", "--ff",
                             help="sage | gaff2 | openff-X.Y.Z | PATH.offxml"),
        output: Path = typer.Option(..., "-o", "--output", help="parameters .yaml or .json"),
        charges: str = api_option(FIELDS, "charges", "--charges",
                                  help="am1bcc | gasteiger | mmff94 | ipolq (QM/MM in water, "
                                       "work files in OUTPUT_ipolq/; default: the force "
                                       "field's)"),
        openmm_xml: Path = typer.Option(None, "--openmm", help="also write an OpenMM System XML"),
        charge: int = typer.Option(None, "--charge", help="total charge (XYZ/PDB input)"),
        from_file: str = typer.Option(None, "--from",
                                      help="read an existing force field instead: prmtop, "
                                           "top, psf (or a pdb with --ff ffxml files)"),
        params: list[Path] = typer.Option(None, "--params",
                                          help="CHARMM prm/rtf/str file of a psf "
                                               "(repeatable)"),
    ) -> None:
        """Assign starting parameters (or read them from an existing force field with
        --from) and write them (and optionally an OpenMM System)."""
        from ffparam.assign import assign_parameters

        if output.suffix.lower() not in (".yaml", ".yml", ".json"):
            raise InputError(f"unknown parameter file type {output.suffix}; use .yaml or .json")
        if (input is None) == (from_file is None):
            raise InputError("give a molecule (INPUT) or an existing force field (--from "
                             "FILE), one of them")
        if from_file is not None:
            system = imported_system(from_file, ff, None, params, need_coordinates=False)
        elif charges and charges.strip().lower() == "ipolq":
            from ffparam.workflows.ipolq import ipolq_system

            molecule = load_input_molecule(input, charge, None)
            system = ipolq_system(assign_parameters(molecule, ff, charges="am1bcc"),
                                  output.parent / f"{output.stem}_ipolq")
        else:
            molecule = load_input_molecule(input, charge, None)
            system = assign_parameters(molecule, ff, charges=charges)
        xml = None
        if openmm_xml is not None:
            import openmm

            from ffparam.mm import to_openmm

            xml = openmm.XmlSerializer.serialize(to_openmm(system))
        system.parameters.save(output)
        if xml is not None:
            from ffparam.io.atomic import write_text_atomic

            write_text_atomic(openmm_xml, xml)
        typer.echo(f"wrote {len(system.parameters)} parameters ({system.source}) to {output}")
