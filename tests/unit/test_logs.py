"""Logs a machine can read (coldstart/logs.py): ``--log-format json`` / ``COLDSTART_LOG_FORMAT``, the worker setup,
and the filter for Ray Train's repeated state-API warning."""

from __future__ import annotations

import json
import logging

import pytest

from coldstart.logs import (LOG_FORMAT_ENV, PG_CLEANER_LOGGER, PG_CLEANER_NOISE, JsonFormatter, RepeatFilter,
                            quiet_ray_noise, setup_logging, setup_worker_logging)

KEYS = {"timestamp", "level", "logger", "message"}


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch):
    """setup_logging changes the root logger and the environment: put both back after each test."""
    for name in (LOG_FORMAT_ENV, "COLDSTART_PROGRESS"):
        monkeypatch.setenv(name, "")  # records the value to restore (setup_logging writes os.environ itself) ...
        monkeypatch.delenv(name)  # ... and starts the test without it
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _json_lines(text: str) -> list[dict]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object, or this fails


def test_a_record_is_one_json_object_with_its_extra_fields():
    try:
        raise KeyError("boom")
    except KeyError:
        record = logging.getLogger("coldstart.x").makeRecord(
            "coldstart.x", logging.WARNING, __file__, 1, "searched %d of %d", (3, 9),
            exc_info=__import__("sys").exc_info(), extra={"request_id": "r1", "progress": {"done": 3}})
    out = json.loads(JsonFormatter().format(record))
    assert out["level"] == "WARNING" and out["logger"] == "coldstart.x" and out["message"] == "searched 3 of 9"
    assert out["timestamp"].endswith("+00:00") and "T" in out["timestamp"]
    assert out["request_id"] == "r1" and out["progress"] == {"done": 3}
    assert "KeyError: 'boom'" in out["exc_info"]
    assert not {"args", "msg", "levelno", "pathname"} & set(out)  # the record's own attributes stay out


def test_the_cli_with_log_format_json_writes_json_lines(tmp_path, tiny_model_dir, capsys):
    """`coldstart --log-format json embed/search`: every stderr line parses, with the keys and the progress fields;
    the format is left in the environment for the processes it starts."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from coldstart.cli import main
    from coldstart.config import JobConfig
    from coldstart.encoders.encoder import EncoderConfig
    from coldstart.publish import embed_in_process, publish_catalog

    catalog = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"item_id": ["a", "b", "c"], "title": ["red chair", "blue lamp", "garden hose"]}), catalog)
    publish_catalog(JobConfig(catalog=str(catalog), store=str(tmp_path / "store"),
                              encoder=EncoderConfig(model=str(tiny_model_dir))), embed=embed_in_process)
    (tmp_path / "requests.tsv").write_text("q1\tchair\nq2\tlamp\n")
    capsys.readouterr()
    assert main(["--log-format", "json", "search", "--store", str(tmp_path / "store"), "--model", str(tiny_model_dir),
                 "--requests", str(tmp_path / "requests.tsv"), "--out", str(tmp_path / "run.trec"), "--k", "2"]) == 0
    captured = capsys.readouterr()
    lines = _json_lines(captured.err)
    assert all(KEYS <= set(line) for line in lines)
    (done,) = [line for line in lines if line["logger"] == "coldstart.progress"]
    assert done["progress"]["done"] == done["progress"]["total"] == 2 and done["progress"]["unit"] == "requests"
    assert json.loads(captured.out)["requests"] == 2  # stdout keeps the command's own output
    assert os.environ[LOG_FORMAT_ENV] == "json"


def test_the_environment_variable_chooses_json_and_a_failure_is_a_json_line(monkeypatch, capsys):
    from coldstart.cli import main

    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    assert main(["evaluate", "--qrels", "/nonexistent/qrels.tsv", "--run", "/nonexistent/run"]) == 1
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["level"] == "ERROR" and line["message"].startswith("error: ") and line["error"]
    monkeypatch.setenv(LOG_FORMAT_ENV, "yaml")
    assert main(["evaluate", "--qrels", "q", "--run", "r"]) == 2
    assert "use text or json" in capsys.readouterr().err


def test_a_job_failure_in_json_is_one_object_with_the_traceback(capsys):
    from jobs.entry import base_parser, run_job

    def body(args):
        raise ValueError("catalog row 17: title is empty\nmore")

    assert run_job(body, base_parser("t"), ["--config", "c.toml", "--log-format", "json"]) == 1
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["message"] == "error: catalog row 17: title is empty" and "Traceback" in line["exc_info"]


def test_text_stays_the_default(capsys):
    assert setup_logging(False) == "text"
    logging.getLogger("coldstart.t").info("hello %s", "there")
    assert capsys.readouterr().err.rstrip().endswith("INFO coldstart.t: hello there")


def test_the_placement_group_cleaners_repeats_are_dropped_and_its_other_warnings_kept(caplog):
    quiet_ray_noise()
    quiet_ray_noise()  # idempotent: one filter
    cleaner = logging.getLogger(PG_CLEANER_LOGGER)
    assert sum(isinstance(f, RepeatFilter) for f in cleaner.filters) == 1
    cleaner.filters = [RepeatFilter(PG_CLEANER_NOISE, "(repeats dropped)")]  # a fresh one for this test
    with caplog.at_level(logging.WARNING, logger=PG_CLEANER_LOGGER):
        for _ in range(5):
            cleaner.warning(PG_CLEANER_NOISE + ". State API may be temporarily unavailable. Continuing to monitor.")
        cleaner.warning("Failed to clean up placement group: timed out")
    messages = [r.getMessage() for r in caplog.records if r.name == PG_CLEANER_LOGGER]
    assert messages == [PG_CLEANER_NOISE + ". State API may be temporarily unavailable. Continuing to monitor. "
                        "(repeats dropped)", "Failed to clean up placement group: timed out"]


def test_a_ray_train_workers_bare_console_handler_is_replaced_and_tqdm_ray_states_pass_verbatim(monkeypatch,
                                                                                                  capsys):
    from ray._private.log import PlainRayHandler

    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    root = logging.getLogger()
    root.handlers[:] = [PlainRayHandler()]  # what Ray Train's worker logging config leaves on the root logger
    setup_worker_logging()
    setup_worker_logging()  # once only
    assert not any(isinstance(h, PlainRayHandler) for h in root.handlers) and len(root.handlers) == 1
    logging.getLogger("pipelines.train").info("step %d/%d", 2, 8, extra={"step": 2})
    state = json.dumps({"__magic_token__": "__ray_tqdm_magic_token__", "x": 2, "total": 8})
    logging.getLogger().info(state)  # Ray Train's print() patch sends tqdm_ray's states through the root logger
    step, bar = capsys.readouterr().err.splitlines()
    assert json.loads(step)["step"] == 2 and json.loads(step)["message"] == "step 2/8"
    assert bar == state  # the driver decodes only a bare state line
