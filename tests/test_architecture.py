"""The house: imports flow one way (a declared rank per module, checked on the source), no module
reaches into another's private names, and importing samdyn after JAX says what it changed."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "samdyn"

#: Where each module sits in the one-way flow (DESIGN.md): a module imports only lower ranks, or
#: modules of its own package. Longest prefix wins.
RANK = {
    "samdyn.checks": 0,
    "samdyn.landscapes": 1, "samdyn.hessian": 1, "samdyn.noise": 1,
    "samdyn.nets.datasets": 1, "samdyn.nets.models": 1,
    "samdyn.optim": 2,
    "samdyn.engine": 3,
    "samdyn.streaming": 4, "samdyn.nets": 4,
    "samdyn.simulation": 5,
    "samdyn.stability": 6, "samdyn.diffusion": 6, "samdyn.reference": 6,
    "samdyn.sweep": 7,
    "samdyn.plotting": 8,
    "samdyn.cli": 9, "samdyn.__main__": 10,
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(name: str) -> int:
    best = max((k for k in RANK if name == k or name.startswith(k + ".")), key=len, default=None)
    assert best is not None, f"{name} has no rank in tests/test_architecture.py: place it in the flow"
    return RANK[best]


def package_of(name: str, is_package: bool) -> str:
    return name if is_package else name.rpartition(".")[0]


def samdyn_imports(path: pathlib.Path):
    """(imported module, imported names, line) for every import of a samdyn module in ``path``."""
    name = module_name(path)
    base = package_of(name, path.name == "__init__.py")
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base.split(".")[: len(base.split(".")) - node.level + 1]
                target = ".".join(parent + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("samdyn"):
                continue
            names = [a.name for a in node.names]
            submodules = [f"{target}.{n}" for n in names if (PACKAGE.parent / (f"{target}.{n}".replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / f"{target}.{n}".replace(".", "/")).is_dir()]
            if submodules:
                for sub in submodules:
                    yield sub, [], node.lineno
            else:
                yield target, names, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("samdyn"):
                    yield alias.name, [], node.lineno


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_one_way_and_stay_public(path):
    name = module_name(path)
    own_package = package_of(name, path.name == "__init__.py")
    for target, names, line in samdyn_imports(path):
        same_package = target.startswith(own_package + ".") or target == own_package
        if path.name == "__init__.py" and same_package:
            continue  # a package gathers its own modules
        if not same_package:
            assert rank(target) < rank(name), f"{path.name}:{line} imports {target} upwards (rank {rank(target)} >= {rank(name)})"
        private_module = target.rpartition(".")[2].startswith("_")
        for imported in names:
            if imported.startswith("_") and not (same_package and private_module):
                pytest.fail(f"{path.name}:{line} imports the private name {imported} from {target}")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(ROOT)})


def test_import_after_jax_warns_once_and_says_what_changed():
    out = run_python(
        "import warnings, jax, jax.numpy as jnp\n"
        "assert jnp.ones(2).dtype == jnp.float32\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import samdyn\n"
        "    import samdyn.simulation\n"
        "msgs = [str(w.message) for w in caught if 'samdyn' in str(w.message)]\n"
        "print(len(msgs)); print(msgs[0]); print(jnp.ones(2).dtype)\n"
    )
    assert out.returncode == 0, out.stderr
    count, message, dtype = out.stdout.strip().splitlines()
    assert count == "1" and dtype == "float64"
    assert "turned on JAX's float64 mode" in message
    assert "could not ask for one JAX CPU device per core" in message and "first cell" in message


def test_import_first_is_silent_and_exposes_every_module():
    out = run_python(
        "import warnings; warnings.simplefilter('error')\n"
        "import samdyn as sd\n"
        "print(sd.plotting.__name__, sd.reference.__name__, sd.engine.__name__, sd.sweep.__name__)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["samdyn.plotting", "samdyn.reference", "samdyn.engine", "samdyn.sweep"]
