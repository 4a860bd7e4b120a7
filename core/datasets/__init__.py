"""Entity datasets: one schema for places, people, works and headlines."""

from core.datasets.schema import EntityDataset, DatasetError, SPACE_TARGETS, TIME_TARGETS

__all__ = ["EntityDataset", "DatasetError", "SPACE_TARGETS", "TIME_TARGETS"]
