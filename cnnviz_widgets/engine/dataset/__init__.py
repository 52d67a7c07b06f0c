"""Data sets and what is computed over them: sources, dataset examples, the unit atlas and
its durable store, and the backends that run them (this process, or Ray)."""

from .atlas import Atlas, AtlasProgress, AtlasUnit, atlas, atlas_job, open_atlas
from .backends import LocalBackend, RayBackend, get_backend
from .examples import (
    ExampleSearch,
    Progress,
    TopExamples,
    rank_examples,
    top_examples,
    top_examples_job,
)
from .sources import DataSource, ShapesStream, data_source

__all__ = [
    "Atlas",
    "AtlasProgress",
    "AtlasUnit",
    "DataSource",
    "ExampleSearch",
    "LocalBackend",
    "Progress",
    "RayBackend",
    "ShapesStream",
    "TopExamples",
    "atlas",
    "atlas_job",
    "data_source",
    "get_backend",
    "open_atlas",
    "rank_examples",
    "top_examples",
    "top_examples_job",
]
