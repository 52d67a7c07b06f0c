"""Data sets and what is computed over them: sources, dataset examples, the unit atlas and
its durable store, and the Ray backend."""

from .atlas import Atlas, AtlasProgress, AtlasUnit, atlas, open_atlas
from .examples import ExampleSearch, Progress, TopExamples, rank_examples, top_examples
from .sources import DataSource, ShapesStream, data_source

__all__ = [
    "Atlas",
    "AtlasProgress",
    "AtlasUnit",
    "DataSource",
    "ExampleSearch",
    "Progress",
    "ShapesStream",
    "TopExamples",
    "atlas",
    "data_source",
    "open_atlas",
    "rank_examples",
    "top_examples",
]
