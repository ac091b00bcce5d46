"""Plain-text file formats for requests, runs, judgements and sessions.

Everything the evaluation reads or writes goes through here, so that a bad line fails loudly with the file,
the line number and what to change, instead of quietly skewing a metric.

Formats (all UTF-8):

- requests: ``qid<TAB>query`` lines, or JSON Lines ``{"qid": ..., "query": ..., "clicks": [...]}``;
- run (TREC): ``qid Q0 item_id rank score tag``;
- qrels (TREC): ``qid 0 item_id grade``, tab or space separated;
- scores of judged pairs: ``qid<TAB>item_id<TAB>score``;
- pairs: ``qid<TAB>query<TAB>item_id``;
- sessions: JSON Lines ``{"user_id": ..., "items": [...]}`` in time order, turned into requests and qrels by the
  cold-start protocol (first k items → later items) or leave-one-out (all but the last → the last).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

Qrels = dict[str, dict[str, int]]
"""``qrels[qid][item_id] = grade``."""

Scores = dict[str, dict[str, float]]
"""``scores[qid][item_id] = score``; for a run, items are in rank order."""


@dataclass(frozen=True)
class Request:
    """One recommendation request: a search query, the items a new user clicked, or both.

    ``query`` is None for a clicks-only request; ``clicks`` are item ids in the order they were clicked.
    """

    qid: str
    query: str | None
    clicks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.qid, str) or not self.qid.strip():
            raise ValueError(f"Request qid must be a non-empty string, got {self.qid!r}")
        if self.query is not None and not self.query.strip():
            raise ValueError(f"Request {self.qid!r}: query is blank; pass query=None for a clicks-only request")
        if not isinstance(self.clicks, tuple) or not all(isinstance(c, str) and c for c in self.clicks):
            raise ValueError(f"Request {self.qid!r}: clicks must be a tuple of non-empty item id strings")
        if self.query is None and not self.clicks:
            raise ValueError(f"Request {self.qid!r} has neither a query nor clicks; give it at least one")


@dataclass(frozen=True)
class Session:
    """One user's items in time order (oldest first)."""

    user_id: str
    items: tuple[str, ...]


class Pair(NamedTuple):
    """A (query, item) pair to be scored, e.g. every judged pair of the qrels."""

    qid: str
    query: str
    item_id: str


def _lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without its line ending) for the non-blank lines of ``path``."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def _bad(path: PathLike, number: int, problem: str) -> ValueError:
    return ValueError(f"{os.fspath(path)} line {number}: {problem}")


def read_requests(path: PathLike) -> list[Request]:
    """Reads requests from TSV (``qid<TAB>query``) or JSON Lines (``{"qid", "query", "clicks"}``).

    The format is chosen per file: JSON Lines when the first non-blank line starts with ``{``. In JSON Lines a
    blank or missing query with clicks becomes ``query=None``; extra keys are ignored.
    """
    lines = list(_lines(path))
    is_jsonl = bool(lines) and lines[0][1].lstrip().startswith("{")
    requests: list[Request] = []
    first_seen: dict[str, int] = {}
    for number, line in lines:
        request = _parse_json_request(path, number, line) if is_jsonl else _parse_tsv_request(path, number, line)
        if request.qid in first_seen:
            raise _bad(path, number, f"duplicate qid {request.qid!r} (first on line {first_seen[request.qid]}); "
                                     "give every request its own qid")
        first_seen[request.qid] = number
        requests.append(request)
    logger.debug("read %d requests from %s (%s)", len(requests), path, "jsonl" if is_jsonl else "tsv")
    return requests


def _parse_tsv_request(path: PathLike, number: int, line: str) -> Request:
    if "\t" not in line:
        raise _bad(path, number, "expected 'qid<TAB>query' (no tab found); separate the qid from the query "
                                 "with a tab, or write the file as JSON Lines")
    qid, query = line.split("\t", 1)
    qid, query = qid.strip(), query.strip()
    if not qid:
        raise _bad(path, number, "the qid before the tab is empty; give the request an id")
    if not query:
        raise _bad(path, number, f"request {qid!r} has an empty query; a TSV request needs a query "
                                 "(use JSON Lines with \"clicks\" for a clicks-only request)")
    return Request(qid=qid, query=query, clicks=())


def _parse_json_request(path: PathLike, number: int, line: str) -> Request:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise _bad(path, number, f"not valid JSON ({e.msg} at column {e.colno}); write one JSON object per line")
    if not isinstance(obj, dict):
        raise _bad(path, number, "expected a JSON object like {\"qid\": ..., \"query\": ..., \"clicks\": [...]}")
    qid = obj.get("qid")
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    if not isinstance(qid, str) or not qid.strip():
        raise _bad(path, number, "missing or empty \"qid\"; give every request a string id")
    query = obj.get("query")
    if query is not None and not isinstance(query, str):
        raise _bad(path, number, f"\"query\" must be a string or null, got {type(query).__name__}")
    query = query.strip() if query and query.strip() else None
    clicks = obj.get("clicks") or []
    if not isinstance(clicks, list) or not all(isinstance(c, str) and c.strip() for c in clicks):
        raise _bad(path, number, "\"clicks\" must be a list of non-empty item id strings")
    if query is None and not clicks:
        raise _bad(path, number, f"request {qid!r} has neither a query nor clicks; give it at least one")
    return Request(qid=qid.strip(), query=query, clicks=tuple(c.strip() for c in clicks))


def write_run(path: PathLike, rows: Iterable[tuple[str, Sequence[tuple[str, float]]]], tag: str) -> int:
    """Writes a TREC run: ``qid Q0 item_id rank score tag``, rank from 1.

    Each ranking is ordered by score, highest first; equal scores keep the order they were given in, so a
    caller's tie-break survives the file. Scores are written with ``repr`` (shortest exact round trip).
    Returns the number of lines written.
    """

    def check(value: str, what: str) -> None:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise ValueError(f"write_run {os.fspath(path)}: {what} {value!r} is empty or contains whitespace; "
                             "TREC runs are whitespace separated, so use ids without spaces")

    check(tag, "run tag")
    seen: set[str] = set()
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        for qid, ranking in rows:
            check(qid, "qid")
            if qid in seen:
                raise ValueError(f"write_run {os.fspath(path)}: qid {qid!r} appears twice; merge its rankings first")
            seen.add(qid)
            scored: list[tuple[str, float]] = []
            for item_id, score in ranking:
                check(item_id, f"query {qid!r}: item id")
                scored.append((item_id, float(score)))
                if math.isnan(scored[-1][1]):
                    raise ValueError(f"write_run {os.fspath(path)}: query {qid!r} item {item_id!r} has a NaN score")
            if len({item_id for item_id, _ in scored}) != len(scored):
                raise ValueError(f"write_run {os.fspath(path)}: query {qid!r} ranks an item twice; keep one entry")
            scored.sort(key=lambda entry: -entry[1])  # stable: equal scores keep the given order
            for rank, (item_id, score) in enumerate(scored, start=1):
                f.write(f"{qid} Q0 {item_id} {rank} {score!r} {tag}\n")
            written += len(scored)
    return written


def read_run(path: PathLike) -> Scores:
    """Reads a TREC run into ``run[qid][item_id] = score``, items in rank order (file order for equal ranks)."""
    entries: dict[str, list[tuple[int, str, float]]] = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise _bad(path, number, f"expected 6 fields 'qid Q0 item_id rank score tag', got {len(fields)}")
        qid, _, item_id, rank, score, _ = fields
        try:
            parsed = (int(rank), item_id, float(score))
        except ValueError:
            raise _bad(path, number, f"rank {rank!r} must be an integer and score {score!r} a number")
        entries.setdefault(qid, []).append(parsed)
    run: Scores = {}
    for qid, ranking in entries.items():
        ranking.sort(key=lambda entry: entry[0])  # stable: equal ranks keep file order
        run[qid] = {}
        for _, item_id, score in ranking:
            if item_id in run[qid]:
                raise ValueError(f"{os.fspath(path)}: query {qid!r} ranks item {item_id!r} twice; keep one line")
            run[qid][item_id] = score
    return run


def read_qrels(path: PathLike) -> Qrels:
    """Reads TREC qrels (``qid 0 item_id grade``, tab or space separated) into ``qrels[qid][item_id] = grade``."""
    qrels: Qrels = {}
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 4:
            raise _bad(path, number, f"expected 4 fields 'qid 0 item_id grade', got {len(fields)}")
        qid, _, item_id, grade = fields
        try:
            value = int(grade)
        except ValueError:
            raise _bad(path, number, f"grade {grade!r} must be an integer")
        judged = qrels.setdefault(qid, {})
        if item_id in judged:
            raise _bad(path, number, f"query {qid!r} judges item {item_id!r} twice; keep one grade per pair")
        judged[item_id] = value
    return qrels


def write_scores(path: PathLike, scores: Mapping[str, Mapping[str, float]]) -> int:
    """Writes judged-pair scores as ``qid<TAB>item_id<TAB>score`` lines; returns the number of lines."""
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        for qid, items in scores.items():
            for item_id, score in items.items():
                if "\t" in qid or "\t" in item_id or "\n" in qid or "\n" in item_id:
                    raise ValueError(f"write_scores: qid {qid!r} / item {item_id!r} contains a tab or newline")
                f.write(f"{qid}\t{item_id}\t{float(score)!r}\n")
                written += 1
    return written


def read_scores(path: PathLike) -> Scores:
    """Reads ``qid<TAB>item_id<TAB>score`` lines into ``scores[qid][item_id] = score``."""
    scores: Scores = {}
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 3:
            raise _bad(path, number, f"expected 'qid<TAB>item_id<TAB>score', got {len(fields)} tab-separated fields")
        qid, item_id, score = fields
        try:
            value = float(score)
        except ValueError:
            raise _bad(path, number, f"score {score!r} is not a number")
        items = scores.setdefault(qid, {})
        if item_id in items:
            raise _bad(path, number, f"query {qid!r} item {item_id!r} is scored twice; keep one line per pair")
        items[item_id] = value
    return scores


def read_pairs(path: PathLike) -> list[Pair]:
    """Reads ``qid<TAB>query<TAB>item_id`` lines, e.g. the judged pairs a system should score."""
    pairs: list[Pair] = []
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) != 3 or not all(field.strip() for field in fields):
            raise _bad(path, number, "expected 'qid<TAB>query<TAB>item_id' with three non-empty fields "
                                     "(a query may not contain tabs)")
        pairs.append(Pair(*(field.strip() for field in fields)))
    return pairs


def read_sessions(path: PathLike) -> list[Session]:
    """Reads JSON Lines ``{"user_id": ..., "items": [...]}``, items in time order."""
    sessions: list[Session] = []
    first_seen: dict[str, int] = {}
    for number, line in _lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise _bad(path, number, f"not valid JSON ({e.msg} at column {e.colno}); write one object per line")
        if not isinstance(obj, dict):
            raise _bad(path, number, "expected a JSON object like {\"user_id\": ..., \"items\": [...]}")
        user_id, items = obj.get("user_id"), obj.get("items")
        if not isinstance(user_id, str) or not user_id:
            raise _bad(path, number, "missing or empty \"user_id\"; give every session a string user id")
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
            raise _bad(path, number, f"user {user_id!r}: \"items\" must be a non-empty list of item id strings")
        if user_id in first_seen:
            raise _bad(path, number, f"duplicate user_id {user_id!r} (first on line {first_seen[user_id]}); "
                                     "merge the user's sessions into one line")
        first_seen[user_id] = number
        sessions.append(Session(user_id=user_id, items=tuple(items)))
    return sessions


def sessions_to_requests_and_qrels(sessions: Iterable[Session], k: int) -> tuple[list[Request], Qrels]:
    """Turns sessions into the cold-start protocol: first ``k`` items are clicks, every later one is relevant.

    Each user becomes a clicks-only request (qid = user_id). Later items that are also among the clicks are
    not relevant (clicked items are never recommended). Users with no later item left are skipped; the
    number skipped is logged and equals ``len(sessions) - len(requests)``.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int (the number of clicks per new user), got {k!r}")
    requests: list[Request] = []
    qrels: Qrels = {}
    skipped = 0
    for session in sessions:
        clicks = session.items[:k]
        relevant = {item: 1 for item in session.items[k:] if item not in clicks}
        if not relevant:
            skipped += 1
            continue
        requests.append(Request(qid=session.user_id, query=None, clicks=tuple(clicks)))
        qrels[session.user_id] = relevant
    logger.info("cold-start k=%d: %d users kept, %d skipped (no item after the first %d clicks)",
                k, len(requests), skipped, k)
    return requests, qrels


class LeaveOneOut(NamedTuple):
    """The leave-one-out next-item protocol of :func:`sessions_to_leave_one_out`.

    ``repeated`` holds the qids whose target also occurs in their history: clicked items are never recommended,
    so for these users the target cannot be reached and every system scores 0 on them.
    """

    requests: list[Request]
    qrels: Qrels
    repeated: tuple[str, ...]

    def without_repeated(self) -> Qrels:
        """The qrels less the users in ``repeated``: the number a system gets where the target can be reached."""
        left_out = set(self.repeated)
        return {qid: judged for qid, judged in self.qrels.items() if qid not in left_out}


def sessions_to_leave_one_out(sessions: Iterable[Session]) -> LeaveOneOut:
    """Turns sessions into the leave-one-out next-item protocol of published sequential recommenders (SASRec,
    VQ-Rec, Recformer): every item of the user but the last is the history, the last item is the one relevant
    item (grade 1).

    Each user becomes a clicks-only request (qid = user_id, clicks = the history in time order, repeats kept).
    A user whose target also occurs in the history keeps it as the target and stays in the qrels, so the
    denominator is every user, as the published protocol counts them; since clicked items are never
    recommended, such a user scores 0, and their qids are returned in ``repeated`` (logged) so that the number
    without them can be reported too (:meth:`LeaveOneOut.without_repeated`). Users with a single item have no
    history and are skipped; the number skipped is logged and equals ``len(sessions) - len(requests)``.
    """
    requests: list[Request] = []
    qrels: Qrels = {}
    repeated: list[str] = []
    skipped = 0
    for session in sessions:
        *history, target = session.items
        if not history:
            skipped += 1
            continue
        requests.append(Request(qid=session.user_id, query=None, clicks=tuple(history)))
        qrels[session.user_id] = {target: 1}
        if target in history:
            repeated.append(session.user_id)
    logger.info("leave-one-out: %d users kept, %d skipped (a single item, no history); %d of them have their "
                "target in the history (unreachable, kept in the denominator)", len(requests), skipped,
                len(repeated))
    return LeaveOneOut(requests, qrels, tuple(repeated))


def judged_pairs(queries_path: PathLike, qrels_path: PathLike) -> list[tuple[str, str, str]]:
    """Every judged ``(qid, query, item_id)`` of ``qrels_path`` whose query has text in ``queries_path``; judged
    queries without text are counted in the log and skipped."""
    queries = {r.qid: r.query for r in read_requests(queries_path) if r.query}
    qrels = read_qrels(qrels_path)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        logger.warning("%d judged queries have no text in %s (first: %s); skipped", len(missing), queries_path,
                       missing[0])
    return [(qid, queries[qid], item_id) for qid in qrels if qid in queries for item_id in qrels[qid]]
