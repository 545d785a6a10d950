"""HTTP serving of many adapters over one base: FastAPI app on top of lorakit.infer.engine."""
