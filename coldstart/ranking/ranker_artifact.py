"""The learned ranker as a published artifact of the store, read by ``coldstart search`` and the Serve app alike::

    rankers/<ranker_id>/query.txt       the LightGBM model of query requests (text format), if trained
    rankers/<ranker_id>/clicks.txt      the model of clicks-only requests, if trained
    rankers/<ranker_id>/manifest.json   features in order and their groups, the settings, what each model was
                                        trained on (requests, rows, how leakage was kept out), checksums, and
                                        the encoder whose cosines it read
    rankers/LATEST                      {"ranker": <ranker_id>}: written last

A ranker is not tied to one index version: its features are scores, not item ids, so the nightly re-embedding
keeps it. It is tied to the encoder (a cosine of another model is another feature): a version embedded by
another encoder refuses it (:class:`~coldstart.ranking.ltr.RankerMismatch`), as does a pipeline that lacks a
feature it was trained with (the cross-encoder, the session signals' labels). A model whose file fails its
checksum is refused whole.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping

from coldstart.artifacts.manifest import VersionRejected, sha256
from coldstart.artifacts.store import ArtifactStore, StoreKeyMissing
from coldstart.ranking.ltr import KINDS, RankerMismatch

logger = logging.getLogger(__name__)

PREFIX = "rankers"
FORMAT = 1


@dataclass(frozen=True)
class RankerManifest:
    ranker_id: str
    created_at: str
    encoder: dict[str, Any]  # name, fingerprint, dim of the encoder whose cosines the features are
    depth: int  # blend candidates the ranker orders
    cross_depth: int  # of which the cross-encoder scores the first
    cross_encoder: str | None  # the cross-encoder model the ``cross`` feature came from
    models: dict[str, dict[str, Any]]  # kind → features, groups, training info, file, sha256, bytes
    format: int = FORMAT

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "RankerManifest":
        return cls(**json.loads(data))


@dataclass
class RankerArtifact:
    """A loaded ranker: ``models`` maps a request kind to ``(booster, feature names)``."""

    manifest: RankerManifest
    models: dict[str, tuple[object, list[str]]] = field(default_factory=dict)

    @property
    def ranker_id(self) -> str:
        return self.manifest.ranker_id

    @property
    def depth(self) -> int:
        return self.manifest.depth

    @property
    def cross_depth(self) -> int:
        return self.manifest.cross_depth

    def check_encoder(self, version) -> None:
        """Refuse ranking ``version`` (a LoadedVersion) when its vectors come from another encoder."""
        mine, theirs = self.manifest.encoder.get("fingerprint"), version.manifest.encoder.fingerprint
        if mine != theirs:
            raise RankerMismatch(
                f"ranker {self.ranker_id} was trained on cosines of encoder {self.manifest.encoder.get('name')} "
                f"(fingerprint {str(mine)[:12]}), version {version.version} is embedded by "
                f"{version.manifest.encoder.name} ({theirs[:12]}): retrain it with `python -m jobs.fit_ranker`")


def latest_ranker(store: ArtifactStore) -> str | None:
    try:
        return json.loads(store.read_bytes(f"{PREFIX}/LATEST"))["ranker"]
    except StoreKeyMissing:
        return None


def publish_ranker(store: ArtifactStore, models: Mapping[str, tuple[object, Mapping[str, Any]]], *, version,
                   depth: int, cross_depth: int, cross_encoder: str | None) -> RankerManifest:
    """Write ``models`` (kind → ``(booster, info)``; ``info`` holds ``features``, ``groups`` and the training
    record) under a new ranker id, then point ``rankers/LATEST`` at it. ``version`` (LoadedVersion) names the
    encoder the features were computed with."""
    unknown = set(models) - set(KINDS)
    if unknown or not models:
        raise ValueError(f"ranker models must be some of {KINDS}, got {sorted(models)}")
    ranker_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
    prefix = f"{PREFIX}/{ranker_id}"
    described = {}
    for kind, (booster, info) in models.items():
        data = booster.model_to_string().encode()
        store.write_bytes(f"{prefix}/{kind}.txt", data)
        described[kind] = {**info, "file": f"{kind}.txt", "sha256": sha256(data), "bytes": len(data)}
    encoder = version.manifest.encoder
    manifest = RankerManifest(
        ranker_id=ranker_id, created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        encoder={"name": encoder.name, "fingerprint": encoder.fingerprint, "dim": encoder.dim}, depth=depth,
        cross_depth=cross_depth, cross_encoder=cross_encoder, models=described)
    store.write_bytes(f"{prefix}/manifest.json", manifest.to_json())
    store.write_bytes(f"{PREFIX}/LATEST", json.dumps({"ranker": ranker_id}).encode())
    logger.info("published ranker %s: %s", ranker_id,
                {k: f"{len(v['features'])} features, {v.get('best_iteration')} trees" for k, v in described.items()})
    return manifest


def load_ranker(store: ArtifactStore, ranker_id: str | None = None) -> RankerArtifact:
    """The ranker ``ranker_id`` (default: the latest), every model checked against its checksum. Raises
    ``LookupError`` when the store has none, ``VersionRejected`` for a corrupt file."""
    import lightgbm as lgb

    ranker_id = ranker_id if ranker_id not in (None, "latest") else latest_ranker(store)
    if ranker_id is None:
        raise LookupError(f"{store.uri} has no learned ranker: train one with `python -m jobs.fit_ranker`")
    prefix = f"{PREFIX}/{ranker_id}"
    try:
        manifest = RankerManifest.from_json(store.read_bytes(f"{prefix}/manifest.json"))
    except StoreKeyMissing:
        raise LookupError(f"{store.uri} has no ranker {ranker_id!r}") from None
    if manifest.format != FORMAT:
        raise VersionRejected(f"ranker {ranker_id} has format {manifest.format}; this code reads {FORMAT}")
    models = {}
    for kind, meta in manifest.models.items():
        data = store.read_bytes(f"{prefix}/{meta['file']}")
        if len(data) != meta["bytes"] or sha256(data) != meta["sha256"]:
            raise VersionRejected(f"ranker {ranker_id}: {meta['file']} does not match its checksum (corrupt or "
                                  "partly written); retrain or publish it again")
        models[kind] = (lgb.Booster(model_str=data.decode()), list(meta["features"]))
    return RankerArtifact(manifest, models)
