"""The docs tell the truth about the code: every recipe key with its default."""

from pathlib import Path

from pydantic import BaseModel

from lorakit.config import RunConfig

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


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


def test_recipes_doc_lists_every_recipe_key_with_its_default():
    table = (DOCS / "recipes.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip(" `")
            for line in table.splitlines() if line.startswith("| `")}
    for key, field in config_keys(RunConfig):
        assert key in rows, f"docs/recipes.md's table lacks {key}"
        if not isinstance(field.get_default(call_default_factory=True), list):
            assert rows[key] == shown(field), f"docs/recipes.md gives {key} the default {rows[key]!r}, " \
                                              f"the config {shown(field)!r}"

