"""lorakit.install, the Python side of `lorakit install`: every option reaches the installer."""

import lorakit
import lorakit.store


def test_install_passes_revision_to_adapters_and_models(monkeypatch):
    calls = []
    monkeypatch.setattr(lorakit.store, "install_adapter", lambda source, **kw: calls.append(("adapter", kw)) or {})
    monkeypatch.setattr(lorakit.store, "install_model", lambda source, **kw: calls.append(("model", kw)) or {})
    lorakit.install("org/adapter", base="tiny", revision="v2", name="ad")
    lorakit.install("org/model", revision="v3")
    assert calls[0][0] == "adapter" and calls[0][1]["revision"] == "v2" and calls[0][1]["base"] == "tiny"
    assert calls[1][0] == "model" and calls[1][1]["revision"] == "v3"
