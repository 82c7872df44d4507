from __future__ import annotations

import ast
from pathlib import Path

import exchange

FORBIDDEN = {"fastapi", "starlette", "typer", "quanguard", "monitor", "desensitize", "watermark"}
PKG = Path(exchange.__file__).parent


def test_exchange_imports_no_service_or_sibling_package() -> None:
    for path in PKG.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_public_surface_sorted_and_modules_small() -> None:
    assert exchange.__all__ == sorted(exchange.__all__)
    for path in PKG.glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name
        assert "from __future__ import annotations" in path.read_text(), path.name


def test_every_error_has_a_kind() -> None:
    from exchange import errors
    kinds = {"invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_large",
             "unavailable", "integrity"}
    for obj in vars(errors).values():
        if isinstance(obj, type) and issubclass(obj, errors.ExchangeError):
            assert obj.kind in kinds
