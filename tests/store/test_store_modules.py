"""The store's modules use one another through public names only."""

import ast
from pathlib import Path

import lorakit.store

STORE = Path(lorakit.store.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_store_module_uses_another_modules_private_names():
    found = []
    for path in sorted(STORE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        modules = set()  # names bound to lorakit modules in this file
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lorakit"):
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"{path.name}: from {node.module} import {alias.name}")
                    modules.add(alias.asname or alias.name)  # may be a module (from lorakit.store import compat)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("lorakit"):
                        modules.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                    and node.value.id in modules):
                found.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert found == []
