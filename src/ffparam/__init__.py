"""ffparam: force fields and machine-learned potentials from quantum-mechanical reference data.

Internal units: kcal/mol, Angstrom, elementary charge, radians, amu (see :mod:`ffparam.units`).
"""

__version__ = "0.1.0"


def lazy_exports(module: str, where: dict[str, str]):
    """A module ``__getattr__`` (PEP 562) that imports each name of ``where`` (name ->
    defining module) on first use, so a package can list a curated ``__all__`` without
    loading heavy dependencies (matplotlib, the liquid and ML stacks) at import."""
    from importlib import import_module

    def __getattr__(name: str):
        if name in where:
            return getattr(import_module(where[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__


__all__ = ["__version__", "lazy_exports"]
