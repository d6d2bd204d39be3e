"""The engine: the one place that combines an extractor and a store. CLI, REST API, web
page, evaluation and benchmarks are thin shells over `Library`."""

from .library import AddReport, Hit, Library

__all__ = ["AddReport", "Hit", "Library"]
