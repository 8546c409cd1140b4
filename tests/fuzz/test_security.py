"""Security properties of ffparam's inputs and child processes (issue 14, section 6):
YAML only through safe loading, model weights only through ``weights_only`` loading, no
shell strings in subprocess calls, and user-chosen names never lead out of the output
directory. The source checks walk the AST of every module under ``src/ffparam``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ffparam.errors import InputError

SRC = Path(__file__).resolve().parents[2] / "src" / "ffparam"

TORCH_LOAD_EXCEPTIONS = {("ml/models/mace.py", "from_mace_model")}
"""``torch.load(weights_only=False)`` allowed only here: MACE pickles whole modules, and the
file read is the one MACE's trainer (our own subprocess) just wrote in our work directory.
Models that users hand to ffparam are loaded from ``weights.pt`` with ``weights_only=True``."""


def _calls():
    """(relative path, enclosing function name, ast.Call) for every call in src/ffparam."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                scope = node
                while scope in parents and not isinstance(
                        scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    scope = parents[scope]
                name = scope.name if isinstance(scope, (ast.FunctionDef,
                                                        ast.AsyncFunctionDef)) else "<module>"
                yield str(path.relative_to(SRC)), name, node


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else "?"


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


CALLS = list(_calls())


def test_yaml_is_only_loaded_safely():
    unsafe = [(f, fn, _dotted(c.func)) for f, fn, c in CALLS
              if _dotted(c.func) in ("yaml.load", "yaml.load_all", "yaml.unsafe_load",
                                     "yaml.full_load", "yaml.full_load_all",
                                     "yaml.unsafe_load_all")]
    safe = [f for f, _, c in CALLS if _dotted(c.func) == "yaml.safe_load"]
    assert not unsafe
    assert safe, "the check found no YAML loading at all: is it looking at the source?"


def test_torch_load_is_weights_only():
    loads = [(f, fn, c) for f, fn, c in CALLS if _dotted(c.func) == "torch.load"]
    assert loads
    unsafe = []
    for f, fn, call in loads:
        flag = _keyword(call, "weights_only")
        if not (isinstance(flag, ast.Constant) and flag.value is True) \
                and (f, fn) not in TORCH_LOAD_EXCEPTIONS:
            unsafe.append((f, fn))
    assert not unsafe


def test_no_pickle_or_eval_of_input():
    risky = [(f, fn, _dotted(c.func)) for f, fn, c in CALLS
             if _dotted(c.func) in ("pickle.load", "pickle.loads", "marshal.loads", "eval",
                                    "exec", "dill.load", "joblib.load")]
    pickled_numpy = [(f, fn) for f, fn, c in CALLS if _dotted(c.func) == "np.load"
                     and isinstance(_keyword(c, "allow_pickle"), ast.Constant)
                     and _keyword(c, "allow_pickle").value is True]
    assert not risky and not pickled_numpy


def test_no_shell_strings_in_subprocess_calls():
    spawners = ("subprocess.run", "subprocess.Popen", "subprocess.call", "subprocess.check_call",
                "subprocess.check_output", "run_guarded", "run_program")
    bad = []
    for f, fn, call in CALLS:
        name = _dotted(call.func)
        if name in ("os.system", "os.popen", "subprocess.getoutput",
                    "subprocess.getstatusoutput") or name.startswith("os.exec") \
                or name.startswith("os.spawn"):
            bad.append((f, fn, name))
        shell = _keyword(call, "shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
            bad.append((f, fn, f"{name} shell="))
        if name in spawners and call.args and isinstance(call.args[0], (ast.Constant,
                                                                         ast.JoinedStr)):
            bad.append((f, fn, f"{name} with a command string"))
    assert not bad
    assert any(_dotted(c.func) == "subprocess.Popen" for _, _, c in CALLS)


def test_yaml_payload_in_a_fit_spec_runs_nothing(tmp_path, monkeypatch):
    from ffparam.fit.spec import load_fit_spec

    monkeypatch.chdir(tmp_path)
    for k, text in enumerate(("!!python/object/apply:builtins.open ['PWNED', 'w']\n",
                              "a: !!python/object/apply:os.system ['touch PWNED']\n")):
        spec = tmp_path / f"spec{k}.yaml"
        spec.write_text(text)
        with pytest.raises(InputError, match="not valid YAML"):
            load_fit_spec(spec)
    assert not (tmp_path / "PWNED").exists()


def test_yaml_payload_in_a_parameter_file_runs_nothing(tmp_path, monkeypatch):
    from ffparam.params import ParameterSet

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.yaml"
    path.write_text("!!python/object/apply:builtins.open ['PWNED', 'w']\n")
    with pytest.raises(Exception) as info:
        ParameterSet.load(path)
    assert "PWNED" not in str(info.value) or not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "PWNED").exists()


def test_pickled_code_in_model_weights_is_refused(tmp_path, monkeypatch):
    from ffparam.ml.checkpoint import load_weights
    from tests.fuzz.cases import pickle_payload

    monkeypatch.chdir(tmp_path)
    pickle_payload(tmp_path / "weights.pt")
    with pytest.raises(InputError, match="weights-only"):
        load_weights(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_committee_members_stay_inside_the_model_directory(tmp_path):
    import json

    from ffparam.ml.potential import load_potential

    model = tmp_path / "model"
    model.mkdir()
    for members in (["../other"], ["/etc"], ["."], ["a/b"], "member_0", []):
        (model / "model.json").write_text(json.dumps({
            "format": "ffparam-mlp", "model_type": "committee", "config": {"members": members}}))
        with pytest.raises(InputError, match="committee members"):
            load_potential(model)


@pytest.mark.parametrize("name", ["../evil", "/tmp/evil", "a/b", "..", ".hidden", "",
                                  "x" * 101, "tab\tname", "é"])
def test_names_that_become_file_names_are_checked(name):
    from ffparam.io.files import check_file_name_part

    with pytest.raises(InputError):
        check_file_name_part(name, "target name")


def test_fit_target_name_cannot_leave_the_plots_folder(tmp_path):
    from ffparam.fit.spec import load_fit_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text("molecules: {m: {input: CCCC}}\n"
                    "targets: [{name: ../../evil, type: torsion_profile, molecule: m, "
                    "reference: scan.xyz}]\n"
                    "parameters: [{section: ProperTorsions}]\n")
    with pytest.raises(InputError, match="target name"):
        load_fit_spec(spec)


@pytest.mark.parametrize("name", ["../../evil", "/abs/evil", "a/b", "..", "x" * 300])
def test_molecule_names_become_plain_file_names(name):
    from ffparam.chem import Molecule
    from ffparam.liquid.data import LiquidReference
    from ffparam.workflows.bespoke import _basename

    molecule = Molecule.from_smiles("CCO", name=name)
    base = _basename(molecule)
    assert base and "/" not in base and not base.startswith(".") and len(base) <= 40
    slug = LiquidReference(name, "CCO", 298.15, 1.0, 0.79, 9.0).slug
    assert "/" not in slug and not slug.startswith(".") and slug.strip("_")
