"""Removing old versions: keep the newest ``keep`` published versions, and never the live one."""

from __future__ import annotations

import logging

from coldstart.manifest import latest_version, list_versions, version_prefix
from coldstart.store import ArtifactStore

logger = logging.getLogger(__name__)


def versions_to_remove(versions: list[str], live: str | None, keep: int) -> list[str]:
    """Oldest-first ``versions`` → the ones beyond the newest ``keep``, minus the live one."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    ordered = sorted(versions)
    kept = set(ordered[-keep:])
    if live is not None:
        kept.add(live)
    return [v for v in ordered if v not in kept]


def apply_retention(store: ArtifactStore, *, keep: int) -> list[str]:
    """Delete the versions :func:`versions_to_remove` names; returns their ids."""
    live = latest_version(store)
    doomed = versions_to_remove(list_versions(store), live, keep)
    for version in doomed:
        assert version != live
        store.delete_prefix(version_prefix(version))
    return doomed
