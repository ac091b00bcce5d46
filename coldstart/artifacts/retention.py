"""Removing old versions and the leftovers of runs that died before publishing.

Two rules, both of which spare the live version (the one ``LATEST`` names) whatever else happens:

- keep the newest ``keep`` published versions (those with a manifest) and delete the older ones;
- delete *orphans*: folders under ``versions/`` without a manifest, left by a run killed between writing its
  files and publishing. A run that is writing right now also has no manifest yet, so an orphan is only removed
  once it is older than a grace period, dated by the timestamp in its version id (files are written within
  seconds of the id being made, see :func:`coldstart.artifacts.versions.stage_version`). An id that carries no
  timestamp is never removed: we cannot tell its age.
"""

from __future__ import annotations

import datetime as dt
import logging

from coldstart.artifacts.manifest import VERSIONS_PREFIX, latest_version, list_versions, version_created_at, version_prefix
from coldstart.artifacts.store import ArtifactStore

logger = logging.getLogger(__name__)

ORPHAN_GRACE = dt.timedelta(hours=6)


def versions_to_remove(versions: list[str], live: str | None, keep: int) -> list[str]:
    """Oldest-first ``versions`` → the ones beyond the newest ``keep``, minus the live one."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    ordered = sorted(versions)
    kept = set(ordered[-keep:])
    if live is not None:
        kept.add(live)
    return [v for v in ordered if v not in kept]


def find_orphans(store: ArtifactStore, *, grace: dt.timedelta = ORPHAN_GRACE,
                 now: dt.datetime | None = None) -> list[str]:
    """Version folders that hold files but no manifest and are older than ``grace``, oldest first."""
    now = now or dt.datetime.now(dt.timezone.utc)
    folders = {key.split("/")[1] for key in store.list(VERSIONS_PREFIX) if key.count("/") >= 2}
    published = set(list_versions(store))
    live = latest_version(store)
    orphans = []
    for version in sorted(folders - published - {live}):
        created = version_created_at(version)
        if created is not None and now - created > grace:
            orphans.append(version)
    return orphans


def apply_retention(store: ArtifactStore, *, keep: int, orphan_grace: dt.timedelta = ORPHAN_GRACE) -> list[str]:
    """Delete the versions :func:`versions_to_remove` names and the orphans :func:`find_orphans` finds.

    Returns the removed ids. Runs after a publish, so a failure here never affects what is live.
    """
    live = latest_version(store)
    doomed = versions_to_remove(list_versions(store), live, keep) + find_orphans(store, grace=orphan_grace)
    for version in doomed:
        assert version != live
        store.delete_prefix(version_prefix(version))
    if doomed:
        logger.info("retention removed %d version folder(s) from %s: %s", len(doomed), store.uri, doomed)
    return doomed
