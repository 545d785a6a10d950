"""The README and docs/ tell the truth about the code: every recipe key with its default, every
linked page present, the commands a newcomer needs on the first screen, no path of one machine."""

import re
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from lorakit import tasks
from lorakit.config import config_class

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def config_keys(model: type[BaseModel], prefix: str = ""):
    """(dotted key, default) for every field, nested sections walked through."""
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from config_keys(field.annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def shown(field) -> str:
    """A default as the recipes table writes it (YAML spelling)."""
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "null"
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


@pytest.mark.parametrize("page, task, prefix", [("recipes.md", tasks.DEFAULT, ""),  # every key, classification's data
                                                ("generation.md", "causal-lm", "data.")])
def test_docs_list_every_recipe_key_with_its_default(page, task, prefix):
    table = (DOCS / page).read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `")
            for line in table.splitlines() if line.startswith("| `")}
    for key, field in config_keys(config_class(task)):
        if not key.startswith(prefix):
            continue
        assert key in rows, f"docs/{page}'s table lacks {key}"
        if not isinstance(field.get_default(call_default_factory=True), list):
            assert rows[key] == shown(field), f"docs/{page} gives {key} the default {rows[key]!r}, " \
                                              f"the config {shown(field)!r}"


def test_readme_links_to_docs_that_exist():
    linked = [t.split("#")[0] for t in LINK.findall(README.read_text()) if t.startswith("docs/")]
    assert linked, "README.md links to no page in docs/"
    missing = [t for t in linked if not (ROOT / t).is_file()]
    assert not missing, f"README.md links to missing pages: {missing}"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_relative_links_in_docs_resolve(page):
    targets = [t.split("#")[0] for t in LINK.findall(page.read_text())
               if "://" not in t and not t.startswith(("#", "mailto:"))]
    missing = [t for t in targets if t and not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_first_screen_of_the_readme_has_the_commands_to_start():
    first = "\n".join(README.read_text().splitlines()[:40])
    assert "make demo" in first and "make demo-generate" in first and "make test" in first


def test_readme_docs_and_results_name_no_path_of_this_machine():
    files = [README, *DOCS.glob("*.md"), ROOT / "benchmarks" / "README.md",
             *(ROOT / "benchmarks" / "results").glob("*.json")]
    paths = [str(ROOT), sys.prefix, "site-packages"]
    found = [(f.relative_to(ROOT).as_posix(), p) for f in files for p in paths if p in f.read_text()]
    assert not found, f"machine paths in published files: {found}"
