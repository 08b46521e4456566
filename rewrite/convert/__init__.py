"""The batch converter: files and folders in, restored files out, safe to kill and resume.

    >>> from rewrite.convert import ConvertConfig, convert_files
    >>> summary = convert_files(["docs/"], ConvertConfig(out="clean/", report="report.jsonl"))

Modules: ``run`` (the run: config, summary, progress, the crash-safe recording order),
``docs`` (one batch of documents: parse, restore, splice, render), ``formats`` (one module per
file format), ``tables`` (Parquet files and ``datasets`` folders, and ``map_dataset`` for a
``datasets.Dataset`` in Python), ``store`` (discovery, path checks, the manifest), ``engines``
and ``ray_engine`` (where the restorer runs) and ``cli`` (``unspin convert``).
"""

from ..errors import UnspinError
from .docs import ConvertOptions, DocResult, Job, convert_jobs
from .engines import RestorerFactory, model_id
from .run import ConvertConfig, Summary, convert_files
from .store import MANIFEST_NAME, Manifest, check_paths, discover
from .tables import map_dataset

__all__ = [
    "ConvertConfig",
    "ConvertOptions",
    "DocResult",
    "Job",
    "Manifest",
    "RestorerFactory",
    "Summary",
    "UnspinError",
    "check_paths",
    "convert_files",
    "convert_jobs",
    "discover",
    "map_dataset",
    "MANIFEST_NAME",
    "model_id",
]
