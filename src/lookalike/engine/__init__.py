"""The engine: the one place that combines an extractor and a store. CLI, REST API, web
page, evaluation and benchmarks are thin shells over `Library`."""

from .duplicates import DuplicateGroup, DuplicateReport, DuplicateThresholds
from .library import AddReport, Hit, Library
from .tags import match_labels

__all__ = ["AddReport", "DuplicateGroup", "DuplicateReport", "DuplicateThresholds", "Hit", "Library", "match_labels"]
