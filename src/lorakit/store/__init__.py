"""The verified local store of base models and adapters."""

from lorakit.store.entries import list_entries, manifest, model_dir
from lorakit.store.install import install_model
from lorakit.store.layout import home

__all__ = ["home", "install_model", "list_entries", "manifest", "model_dir"]
