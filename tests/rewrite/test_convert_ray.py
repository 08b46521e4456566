"""The Ray engine gives the same outputs, manifest and report as the local one (local Ray, 2 CPUs)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from rewrite.convert import MANIFEST_NAME, ConvertConfig, convert_files
from rewrite.errors import ModelError

from .convert_fakes import make_fake
from .test_convert_run import make_tree, tree


@pytest.fixture(scope="module")
def local_ray():
    import ray  # the 'ray' extra

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def manifest_rows(out: Path) -> list[tuple]:
    db = sqlite3.connect(out / MANIFEST_NAME)
    try:
        return db.execute("SELECT path, sha256, model_id, settings, status, report FROM files ORDER BY path").fetchall()
    finally:
        db.close()


def report(path: Path) -> list[dict]:
    return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda r: r["path"])


@pytest.mark.slow
def test_ray_engine_matches_the_local_engine(local_ray, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    (src / "bad.jsonl").write_bytes(b'{"text": "mentioned"}\n{oops\n')
    (src / "bin.txt").write_bytes(b"\x00")
    for k in range(8):
        (src / f"many/{k}.md").parent.mkdir(exist_ok=True)
        (src / f"many/{k}.md").write_bytes(b"# Doc %d\n\nIndividuals mentioned `mentioned` %d.\n" % (k, k))

    def run(name, **kwargs):
        config = ConvertConfig(out=str(tmp_path / name), report=str(tmp_path / f"{name}.jsonl"), progress=False, batch_files=3, **kwargs)
        return convert_files([src], config, make_fake)

    local = run("local")
    remote = run("ray", engine="ray", workers=2)
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    assert manifest_rows(tmp_path / "ray") == manifest_rows(tmp_path / "local")
    assert report(tmp_path / "ray.jsonl") == report(tmp_path / "local.jsonl")
    assert (remote.ok, remote.partial, remote.failed, remote.edits) == (local.ok, local.partial, local.failed, local.edits)
    assert remote.failed == 1 and remote.partial == 1

    again = run("ray", engine="ray", workers=2)  # resumes from the manifest like the local engine
    assert again.cached == again.total


def _broken_factory():
    raise ModelError("no model here; pass --model DIR")


@pytest.mark.slow
def test_ray_engine_reports_a_model_that_does_not_load(local_ray, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    config = ConvertConfig(out=str(tmp_path / "out"), engine="ray", workers=1, progress=False)
    with pytest.raises(ModelError, match="no model here"):
        convert_files([src], config, _broken_factory)
