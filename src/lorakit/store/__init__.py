"""The verified local store of base models and adapters."""

from lorakit.store.adapters import install_adapter
from lorakit.store.entries import adapter_dir, find, list_entries, manifest, model_dir, show
from lorakit.store.install import install_model
from lorakit.store.layout import home
from lorakit.store.maintenance import gc, remove, verify

__all__ = ["adapter_dir", "find", "gc", "home", "install_adapter", "install_model", "list_entries", "manifest",
           "model_dir", "remove", "show", "verify"]
