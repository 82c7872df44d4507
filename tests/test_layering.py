"""House rules that keep the domain packages libraries (STYLE.md 1, 2, 3, 9)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOMAIN = ("monitor", "desensitize", "watermark", "exchange")
FORBIDDEN = ("fastapi", "starlette", "typer", "click", "uvicorn", "quanguard")


def _modules(package: str) -> list[Path]:
    """The package's modules; a missing package fails the test that asked (never a skip)."""
    assert (REPO / package / "__init__.py").is_file(), f"package {package} is missing"
    return sorted((REPO / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", DOMAIN)
def test_domain_packages_import_no_framework_and_not_each_other(package: str) -> None:
    bad = []
    others = tuple(p for p in DOMAIN if p != package)
    for path in _modules(package):
        for line, name in _imports(path):
            root = name.split(".")[0]
            if root in FORBIDDEN or root in others:
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", [*DOMAIN, "quanguard", "gmcrypto"])
def test_public_surface_is_sorted(package: str) -> None:
    init = REPO / package / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            names = ast.literal_eval(node.value)
    assert names is not None, f"{init} has no __all__"
    assert list(names) == sorted(names), f"{init}: __all__ is not sorted"


def test_quanguard_has_no_module_level_engine_or_settings() -> None:
    """Nothing happens at import time: no engine, settings or app built at module level."""
    bad = []
    for path in _modules("quanguard"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                if name in {"load_settings", "make_engine", "create_engine", "create_app", "build_container"}:
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not bad, bad


def test_crypto_suite_library_is_neutral() -> None:
    """gmcrypto is shared by every domain package, so it imports none of them (nor quanguard)."""
    bad = []
    for path in _modules("gmcrypto"):
        for line, name in _imports(path):
            root = name.split(".")[0]
            if root in FORBIDDEN or root in DOMAIN:
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["desensitize", "exchange"])
def test_lazy_surface_is_whole_and_lazy(package: str) -> None:
    """The names the type checker sees (the ``TYPE_CHECKING`` imports), ``__all__`` and what
    loads at run time agree, and importing the package loads none of its submodules (PEP 562)."""
    import importlib
    import subprocess
    import sys

    tree = ast.parse((REPO / package / "__init__.py").read_text(encoding="utf-8"))
    declared = {
        alias.name: node.module
        for block in tree.body if isinstance(block, ast.If)
        for node in block.body if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }
    pkg = importlib.import_module(package)
    assert sorted(declared) == sorted(pkg.__all__)
    for name, module in declared.items():
        assert getattr(pkg, name) is getattr(importlib.import_module(module), name), name
        assert name in dir(pkg)
    with pytest.raises(AttributeError):
        _ = pkg.no_such_name
    probe = (f"import sys, {package}; "
             f"print(sorted(m for m in sys.modules if m.startswith('{package}.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=REPO).stdout.strip()
    assert loaded == "[]", loaded
