"""Prometheus metrics of one server: requests, latency, batch sizes, queue depth (own registry, no globals)."""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.requests = Counter("lorakit_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("lorakit_request_seconds", "Request latency by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_texts = Histogram("lorakit_batch_texts", "Texts per forward pass.", buckets=BATCH_BUCKETS, registry=r)
        self.batch_adapters = Histogram("lorakit_batch_adapters", "Distinct adapters per forward pass.",
                                        buckets=BATCH_BUCKETS, registry=r)
        self.batch_seconds = Histogram("lorakit_batch_seconds", "Seconds per forward pass.",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.texts = Counter("lorakit_texts_classified", "Texts classified, by adapter.", ["adapter"], registry=r)
        self.queue = Gauge("lorakit_queue_texts", "Texts waiting for a forward pass.", registry=r)
        self.adapters = Gauge("lorakit_adapters_loaded", "Adapters loaded.", registry=r)

    def observe_batch(self, texts: int, adapters: int, seconds: float) -> None:
        self.batch_texts.observe(texts)
        self.batch_adapters.observe(adapters)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
