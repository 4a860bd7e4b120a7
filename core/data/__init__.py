"""Entity datasets: one schema for places, people, works and headlines."""

from core.data.schema import SPACE_TARGETS, TIME_TARGETS, DatasetError, EntityDataset

__all__ = ["EntityDataset", "DatasetError", "SPACE_TARGETS", "TIME_TARGETS"]
