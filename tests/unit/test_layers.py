"""The CLI may import the adapters only inside command functions, never at module level.

import-linter (in `make test`) forbids the core from importing `api`, `drivers` and `firmware_sim`
except from `pos_loyalty.cli`; this test keeps even those imports lazy, so importing the core never
loads an adapter.
"""

import ast
from pathlib import Path

import pytest

ADAPTERS = ("api", "drivers", "firmware_sim")
CORE = Path(__file__).resolve().parents[2] / "pos_loyalty"


def module_level_imports(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_no_adapter_at_module_level(path: Path) -> None:
    imported = module_level_imports(ast.parse(path.read_text(encoding="utf-8")))
    offending = [name for name in imported if name.split(".")[0] in ADAPTERS]
    assert offending == [], f"{path.name} imports {offending} at module level"
