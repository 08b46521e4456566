"""The crash guarantee: ``kill -9`` at any moment, rerun, and the output tree is exactly what an
uninterrupted run gives. The CLI runs as a subprocess with a slow fake restorer."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewrite.convert import MANIFEST_NAME

from .test_convert_run import tree

pytestmark = pytest.mark.slow  # kill -9 of subprocesses, each rerun to the end

REPO = Path(__file__).resolve().parents[2]
N_FILES = 14


def make_inputs(root: Path) -> None:
    for k in range(N_FILES):
        folder = root / f"part{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc{k:02d}.txt").write_bytes(b"Individuals mentioned %d things.\r\n\r\nNot less than %d.\r\n" % (k, k))
    (root / "notes.md").write_bytes(b"# Title\n\nThey mentioned `code` and not less than 3.\n")
    (root / "rows.jsonl").write_bytes(b'{"text": "individuals mentioned"}\n{"broken\n')
    (root / "binary.txt").write_bytes(b"\x00\x00")


def start(src: Path, out: Path, delay: float, *extra: str, batch_rows: int = 256) -> subprocess.Popen:
    env = {**os.environ, "UNSPIN_FAKE_DELAY": str(delay), "UNSPIN_FAKE_BATCH_FILES": "1",
           "UNSPIN_FAKE_BATCH_ROWS": str(batch_rows), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "tests.rewrite.convert_fakes", str(src), "--out", str(out), "--report",
           str(out.parent / f"{out.name}.jsonl"), "--no-progress", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=timeout)
    finally:
        _kill_group(proc)
    return proc.returncode, output.decode(errors="replace")


def _kill_group(proc: subprocess.Popen) -> None:
    """End the run's process group (spawned workers included), which this test started."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def outputs(out: Path) -> list[Path]:
    return [p for p in out.rglob("*.txt") if not p.name.startswith(".")] if out.exists() else []


def kill_after(proc: subprocess.Popen, out: Path, n_outputs: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while len(outputs(out)) < n_outputs:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _kill_group(proc)
    return proc.returncode


def manifest_paths(out: Path) -> set[str]:
    if not (out / MANIFEST_NAME).exists():
        return set()
    db = sqlite3.connect(out / MANIFEST_NAME)
    try:
        return {path for (path,) in db.execute("SELECT path FROM files")}
    finally:
        db.close()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    src = root / "src"
    make_inputs(src)
    code, output = finish(start(src, root / "clean", 0.0))
    assert code == 2, output  # the malformed JSONL line and the binary file
    report = [json.loads(line) for line in (root / "clean.jsonl").read_text().splitlines()]
    return src, tree(root / "clean"), {r["path"]: (r["status"], r["edits"], r["errors"]) for r in report}


@pytest.mark.parametrize(
    "n_outputs, workers",
    [(0, "1"), (1, "1"), (6, "1"), (N_FILES - 1, "1"), (4, "2")],
    ids=["at-start", "after-1", "after-6", "near-end", "2-workers"],
)
def test_kill_9_then_rerun_gives_the_outputs_of_a_clean_run(clean_run, tmp_path, n_outputs, workers):
    src, clean_tree, clean_report = clean_run
    out = tmp_path / "out"
    proc = start(src, out, 0.1, "--workers", workers)
    if n_outputs == 0:
        time.sleep(0.3)  # killed while starting up, possibly before anything was written
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _kill_group(proc)
    else:
        kill_after(proc, out, n_outputs)
    assert proc.returncode == -signal.SIGKILL  # it really was interrupted
    assert len(outputs(out)) < N_FILES
    finished = manifest_paths(out)
    if n_outputs == N_FILES - 1:
        assert finished  # rows are committed about once a second; this run lasted longer
    code, output = finish(start(src, out, 0.0, "--workers", workers))
    assert code == 2, output
    assert tree(out) == clean_tree
    assert not [p for p in out.rglob("*") if ".unspin-tmp-" in p.name]
    report = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {r["path"]: (r["status"], r["edits"], r["errors"]) for r in report} == clean_report
    assert {r["path"] for r in report if r["cached"]} == finished  # what the manifest held was skipped


def test_killed_repeatedly_at_random_moments_then_finished(clean_run, tmp_path):
    src, clean_tree, _ = clean_run
    out = tmp_path / "out"
    assert kill_after(start(src, out, 0.1), out, 3) == -signal.SIGKILL
    rng = random.Random(6)
    for _ in range(3):
        proc = start(src, out, 0.02)
        time.sleep(rng.uniform(0.2, 1.2))  # anywhere: start-up, reading, writing, committing
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _kill_group(proc)
    code, output = finish(start(src, out, 0.0))
    assert code == 2, output
    assert tree(out) == clean_tree
    assert not [p for p in out.rglob("*") if ".unspin-tmp-" in p.name]


def test_kill_9_inside_a_parquet_file_then_rerun_resumes_from_its_parts(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from rewrite.convert import ConvertConfig, convert_files
    from rewrite.convert.tables import PARTS_DIR

    from .convert_fakes import make_fake

    texts = [f"Individuals mentioned {k} things." if k % 4 else None for k in range(60)]
    pq.write_table(pa.table({"id": list(range(60)), "text": texts}), tmp_path / "t.parquet")
    convert_files([tmp_path / "t.parquet"], ConvertConfig(out=str(tmp_path / "clean"), batch_rows=5, progress=False), make_fake)
    out = tmp_path / "out"
    proc = start(tmp_path / "t.parquet", out, 0.1, batch_rows=5)
    deadline = time.monotonic() + 60
    while len(list((out / PARTS_DIR).rglob("*.arrow"))) < 3:  # 3 of the 12 batches are done
        assert proc.poll() is None and time.monotonic() < deadline, "no progress before the kill"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _kill_group(proc)
    assert not (out / "t.parquet").exists()
    code, output = finish(start(tmp_path / "t.parquet", out, 0.0, batch_rows=5))
    assert code == 0, output
    assert pq.read_table(out / "t.parquet").equals(pq.read_table(tmp_path / "clean" / "t.parquet"))
    assert not (out / PARTS_DIR).exists()
    assert not [p for p in out.rglob("*") if ".unspin-tmp-" in p.name]
