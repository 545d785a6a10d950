"""Limits and knobs of the server, grouped in one place (the CLI fills them from flags)."""

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Settings:
    max_texts: int = 64
    """Texts per /v1/classify request."""
    max_chars: int = 5000
    """Characters per text."""
    max_body_bytes: int = 2 * 1024 * 1024
    """Request body size; larger bodies get 413 before they are parsed."""
    max_queue: int = 1024
    """Texts waiting for the model; beyond this, requests get 503 with Retry-After. Keep it below what
    the model classifies within request_timeout_s (minilm's rate: benchmarks/README.md, Measurements
    behind the code), so that an overloaded server answers 503 at once rather than 504 after the
    timeout."""
    max_batch: int = 64
    """Texts per forward pass."""
    max_wait_ms: float = 5.0
    """How long the first waiting text waits for others to share its forward pass."""
    request_timeout_s: float = 30.0
    """A request still waiting after this gets 504."""
    max_adapters: int = 64
    """Adapters loaded at once."""
    api_key: str | None = None
    """Bearer token required on every route but /healthz and the docs; None: no auth."""
    mixed: bool = True
    """Mixed-adapter batches; False switches the active adapter per request (the naive way, for comparison)."""
    precision: str = "auto"
    """auto: bf16 forward passes on CPUs with native bf16, close calls decided in fp32; or fp32, bf16."""


def with_env_key(settings: Settings) -> Settings:
    """``--api-key`` wins; otherwise ``LORAKIT_API_KEY`` (empty means none)."""
    if settings.api_key:
        return settings
    return replace(settings, api_key=os.environ.get("LORAKIT_API_KEY") or None)
