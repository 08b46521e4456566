"""Settings from UNSPIN_* variables, and the `serve` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from service.cli import serve
from service.settings import Settings


def test_defaults_need_no_environment():
    settings = Settings()
    assert settings.model_dir is None
    assert settings.api_key is None
    assert settings.cors_origins == []
    assert settings.max_batch_texts <= settings.queue_size


def test_every_setting_reads_its_unspin_variable(monkeypatch, tmp_path):
    variables = {
        "UNSPIN_MODEL_DIR": str(tmp_path),
        "UNSPIN_BACKEND": "torch",
        "UNSPIN_MODE": "fast",
        "UNSPIN_THREADS": "2",
        "UNSPIN_MAX_TEXT_CHARS": "500",
        "UNSPIN_MAX_BODY_BYTES": "4096",
        "UNSPIN_MAX_BATCH_TEXTS": "8",
        "UNSPIN_MODEL_BATCH_TEXTS": "16",
        "UNSPIN_QUEUE_SIZE": "32",
        "UNSPIN_REQUEST_TIMEOUT_S": "2.5",
        "UNSPIN_BATCH_WAIT_MS": "3",
        "UNSPIN_RETRY_AFTER_S": "4",
        "UNSPIN_BATCH_SECONDS": "2",
        "UNSPIN_ADMIT_SHARE": "0.5",
        "UNSPIN_SHUTDOWN_TIMEOUT_S": "3",
        "UNSPIN_WARMUP": "false",
        "UNSPIN_API_KEY": "s3cret",
        "UNSPIN_CORS_ORIGINS": "https://a.example, https://b.example",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.model_dir == tmp_path
    assert settings.backend == "torch" and settings.threads == 2 and settings.mode == "fast"
    assert (settings.max_text_chars, settings.max_body_bytes) == (500, 4096)
    assert (settings.max_batch_texts, settings.model_batch_texts) == (8, 16)
    assert (settings.queue_size, settings.request_timeout_s) == (32, 2.5)
    assert (settings.batch_wait_ms, settings.retry_after_s) == (3, 4)
    assert (settings.batch_seconds, settings.admit_share, settings.shutdown_timeout_s) == (2, 0.5, 3)
    assert settings.warmup is False
    assert settings.api_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert set(Settings.model_fields) == {
        name.removeprefix("UNSPIN_").lower() for name in variables
    }, "a setting was added without a test of its variable"


def test_empty_api_key_means_none(monkeypatch):
    monkeypatch.setenv("UNSPIN_API_KEY", "  ")
    assert Settings().api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UNSPIN_MAX_TEXT_CHARS", "0"),
        ("UNSPIN_MAX_TEXT_CHARS", "lots"),
        ("UNSPIN_REQUEST_TIMEOUT_S", "-1"),
        ("UNSPIN_BATCH_WAIT_MS", "-5"),
        ("UNSPIN_BACKEND", "tpu"),
    ],
)
def test_invalid_values_are_rejected(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_a_request_limit_larger_than_the_queue_is_rejected_with_advice():
    with pytest.raises(ValidationError, match="raise UNSPIN_QUEUE_SIZE or lower"):
        Settings(max_batch_texts=10, queue_size=5)


# --- unspin serve ----------------------------------------------------------------------------


@pytest.fixture
def uvicorn_calls(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def test_serve_runs_the_app_factory(uvicorn_calls, monkeypatch):
    import os

    monkeypatch.setenv("UNSPIN_THREADS", "")  # unset for the command; restored after the test
    result = CliRunner().invoke(serve, ["--port", "8123", "--workers", "2"])
    assert result.exit_code == 0, result.output
    # two workers share the CPUs instead of each computing with all of them
    assert os.environ["UNSPIN_THREADS"] == str(max(1, len(os.sched_getaffinity(0)) // 2))
    [(args, kwargs)] = uvicorn_calls
    assert args == ("service.main:create_app",)
    assert kwargs == {
        "factory": True,
        "host": "127.0.0.1",
        "port": 8123,
        "workers": 2,
        "log_level": "info",
        "timeout_graceful_shutdown": 10.0,  # UNSPIN_SHUTDOWN_TIMEOUT_S: SIGTERM ends a busy server
    }


def test_serve_keeps_a_thread_count_the_user_set(uvicorn_calls, monkeypatch):
    import os

    monkeypatch.setenv("UNSPIN_THREADS", "3")
    result = CliRunner().invoke(serve, ["--workers", "4"])
    assert result.exit_code == 0, result.output
    assert os.environ["UNSPIN_THREADS"] == "3"


def test_serve_passes_the_model_folder_to_every_worker(uvicorn_calls, tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("UNSPIN_MODEL_DIR", "/elsewhere")  # restored after the test
    result = CliRunner().invoke(serve, ["--model", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert Path(os.environ["UNSPIN_MODEL_DIR"]) == tmp_path.resolve()


def test_serve_passes_the_backend_and_rejects_unknown_ones(uvicorn_calls, monkeypatch):
    import os

    monkeypatch.setenv("UNSPIN_BACKEND", "auto")  # restored after the test
    result = CliRunner().invoke(serve, ["--backend", "torch"])
    assert result.exit_code == 0, result.output
    assert os.environ["UNSPIN_BACKEND"] == "torch"
    calls = len(uvicorn_calls)
    result = CliRunner().invoke(serve, ["--backend", "quantum"])
    assert result.exit_code == 2 and "BACKEND" in result.output.upper()
    assert len(uvicorn_calls) == calls


def test_serve_rejects_a_missing_model_folder(uvicorn_calls, tmp_path):
    result = CliRunner().invoke(serve, ["--model", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert uvicorn_calls == []


def test_serve_reports_bad_settings_as_a_usage_error(uvicorn_calls, monkeypatch):
    monkeypatch.setenv("UNSPIN_MAX_TEXT_CHARS", "lots")
    result = CliRunner().invoke(serve, [])
    assert result.exit_code == 2
    assert "invalid UNSPIN_* setting" in result.output
    assert uvicorn_calls == []


def test_serve_warns_when_exposed_without_a_key(uvicorn_calls):
    exposed = CliRunner().invoke(serve, ["--host", "0.0.0.0"])
    assert "without an API key" in exposed.output
    local = CliRunner().invoke(serve, ["--host", "::1"])
    assert "without an API key" not in local.output


def test_openapi_states_the_served_models_own_threshold(tmp_path):
    import json

    from rewrite.restorer import DEFAULT_MODEL
    from service.main import create_app
    from tests.service.service_fakes import isolated_settings

    def described(settings) -> str:
        app = create_app(settings, load_restorer=lambda _settings: None)
        return app.openapi()["components"]["schemas"]["RestoreRequest"]["properties"]["min_confidence"]["description"]

    shipped = json.loads((DEFAULT_MODEL / "finder.json").read_text())["min_confidence"]
    fast = json.loads((DEFAULT_MODEL / "restorer.json").read_text())["min_confidence"]
    assert described(isolated_settings()).endswith(f"The served model recommends {shipped:g}.")
    assert described(isolated_settings(mode="fast")).endswith(f"The served model recommends {fast:g}.")
    (tmp_path / "restorer.json").write_text(json.dumps({"min_confidence": 0.37}))
    assert described(isolated_settings(model_dir=tmp_path)).endswith("The served model recommends 0.37.")
