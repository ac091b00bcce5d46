"""The job entry-point convention: exit 0 only on success, and a failure's first line is its cause."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobs.entry import base_parser, cause_line, run_job

ROOT = Path(__file__).resolve().parents[2]


def test_success_exits_zero(capsys):
    assert run_job(lambda args: print("done", args.config), base_parser("t"), ["--config", "c.toml"]) == 0
    assert capsys.readouterr().out == "done c.toml\n"


def test_failure_prints_one_line_of_cause_first_then_details(capsys):
    def body(args):
        raise ValueError("catalog row 17: title is empty\nsecond line of detail")

    assert run_job(body, base_parser("t"), ["--config", "c.toml"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: catalog row 17: title is empty"
    assert "Traceback (most recent call last):" in err[1:]


def test_cause_line_names_the_type_when_the_message_is_empty():
    assert cause_line(RuntimeError()) == "RuntimeError"


def test_reembed_module_fails_cleanly_on_a_missing_catalog(tmp_path):
    """The real entry point, as a scheduler runs it: fails before Ray starts, exit 1, cause first."""
    config = tmp_path / "c.toml"
    config.write_text(f'catalog = "{tmp_path / "missing.parquet"}"\nstore = "{tmp_path / "store"}"\n')
    proc = subprocess.run([sys.executable, "-m", "jobs.reembed", "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    err = proc.stderr.splitlines()
    (cause,) = [i for i, line in enumerate(err) if line.startswith("error: ")]  # log lines may come before it
    assert err[cause] == f"error: catalog {tmp_path / 'missing.parquet'} does not exist"
    assert err[cause + 1] == "Traceback (most recent call last):"
    assert proc.stdout == ""


def test_store_comes_from_the_flag_then_coldstart_store(monkeypatch):
    monkeypatch.setenv("COLDSTART_STORE", "s3://bucket/prod")
    assert base_parser("t").parse_args(["--config", "c.toml"]).store == "s3://bucket/prod"
    assert base_parser("t").parse_args(["--config", "c.toml", "--store", "/tmp/s"]).store == "/tmp/s"
    monkeypatch.delenv("COLDSTART_STORE")
    assert base_parser("t").parse_args(["--config", "c.toml"]).store is None  # the config file's store
