"""Progress of long work (coldstart/progress.py): plain lines off a terminal, a bar on one, and the loops that use it."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from coldstart.progress import PROGRESS_ENV, Progress, progress_env, progress_mode


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_mode_from_the_environment(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.delenv("COLDSTART_LOG_FORMAT", raising=False)


def test_the_mode_follows_the_terminal_unless_the_environment_says(monkeypatch):
    assert progress_mode(io.StringIO()) == "log"
    assert progress_mode(_Tty()) == "bar"
    monkeypatch.setenv("COLDSTART_LOG_FORMAT", "json")  # JSON lines on stderr: no bar between them
    assert progress_mode(_Tty()) == "log"
    monkeypatch.setenv(PROGRESS_ENV, "off")
    assert progress_mode(_Tty()) == "off" and progress_env() == {PROGRESS_ENV: "off"}
    monkeypatch.setenv(PROGRESS_ENV, "fancy")
    with pytest.raises(ValueError, match="COLDSTART_PROGRESS='fancy': use one of bar, log, off"):
        progress_mode()


def test_off_a_terminal_it_logs_done_total_rate_and_eta_every_n_percent_and_at_the_end(caplog):
    caplog.set_level(logging.INFO, logger="coldstart.progress")
    with Progress(1000, desc="embed", unit="titles", every_s=3600, every_pct=25, stream=io.StringIO()) as progress:
        for _ in range(10):
            progress.update(100)
    lines = [r for r in caplog.records if r.name == "coldstart.progress"]
    assert [r.progress["done"] for r in lines] == [300, 500, 800, 1000]  # 25 %, 50 %, 75 % crossed, then the end
    last = lines[-1]
    assert last.getMessage().startswith("embed: 1,000/1,000 titles (100%), ")
    assert "titles/s, elapsed " in last.getMessage() and last.getMessage().endswith("ETA 00:00")
    assert last.progress["total"] == 1000 and last.progress["eta_s"] == 0.0 and last.progress["rate_per_s"] > 0


def test_a_line_at_least_every_every_s_seconds(caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="coldstart.progress")
    clock = iter(float(t) for t in range(0, 1000, 20))  # every update is 20 s after the last
    monkeypatch.setattr("coldstart.progress.time.monotonic", lambda: next(clock))
    progress = Progress(1000, desc="fine-tune", unit="steps", every_s=30, every_pct=100, mode="log")
    for _ in range(6):
        progress.update(1)
    done = [r.progress["done"] for r in caplog.records if r.name == "coldstart.progress"]
    assert done == [2, 4, 6]  # 40 s, 80 s, 120 s after start: one line per 30 s or more
    status = caplog.records[0].progress
    assert status["rate_per_s"] == pytest.approx(2 / 40, abs=1e-3) and status["eta_s"] == pytest.approx(998 * 20)


def test_a_resumed_run_counts_only_its_own_steps_in_the_rate(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr("coldstart.progress.time.monotonic", lambda: next(clock))
    progress = Progress(100, desc="fine-tune", unit="steps", initial=40, mode="off")
    progress.update(10)
    assert progress.status(10.0) == {"task": "fine-tune", "done": 50, "total": 100, "unit": "steps",
                                     "elapsed_s": 10.0, "rate_per_s": 1.0, "eta_s": 50.0}


def test_on_a_terminal_it_draws_a_tqdm_bar_with_rate_and_eta(caplog):
    caplog.set_level(logging.INFO, logger="coldstart.progress")
    screen = _Tty()
    with Progress(50, desc="search", unit="requests", stream=screen) as progress:
        for _ in range(5):
            progress.update(10)
    drawn = screen.getvalue()
    assert "search: 100%" in drawn and "50/50" in drawn and "requests/s" in drawn
    assert not [r for r in caplog.records if r.name == "coldstart.progress"]  # no log lines beside the bar


def test_the_in_process_encoder_reports_every_text_once(tiny_model_dir):
    from coldstart.encoders.encoder import Encoder, EncoderConfig

    seen = []
    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), batch_size=3))
    texts = [f"product number {n} " * (n % 4 + 1) for n in range(10)]
    vectors = encoder.encode(texts, on_batch=seen.append)
    assert seen == [3, 3, 3, 1]
    np.testing.assert_allclose(vectors, encoder.encode(texts), atol=1e-6)


class _PairScorer:
    """A stand-in pipeline: a pair's score is a function of its query and item only."""

    def __init__(self):
        self.calls = []

    def pair_scores(self, queries, item_ids):
        self.calls.append(list(queries))
        return np.array([float("nan") if i == "gone" else len(q) + int(i[1:]) for q, i in zip(queries, item_ids)],
                        dtype=np.float32)


def test_pairs_are_scored_in_chunks_that_keep_a_querys_pairs_together():
    from coldstart.evaluation.runs import score_pairs

    pairs = [(f"q{n // 3}", f"query {n // 3}", f"i{n}") for n in range(10)] + [("q9", "query 9", "gone")]
    scorer = _PairScorer()
    by_query, unknown = score_pairs(scorer, pairs, chunk_size=4)
    assert [len(c) for c in scorer.calls] == [6, 4, 1]  # 4 pairs, then on to the end of query 1's pairs; ...
    assert all(not set(a) & set(b) for n, a in enumerate(scorer.calls) for b in scorer.calls[n + 1:])
    assert unknown == 1
    assert by_query == {f"q{g}": {f"i{n}": float(len(f"query {g}") + n) for n in range(10) if n // 3 == g}
                        for g in range(4)}
