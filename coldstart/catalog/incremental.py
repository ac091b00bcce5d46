"""Which products need embedding: the diff between today's catalog and the live version.

A product's content fingerprint is the digest of its composed text; with the encoder's fingerprint it decides the
vector. Unchanged products (same id, same text, same encoder) keep their vectors; new and changed ones are
embedded; products gone from the catalog are dropped. A changed encoder means everything is re-embedded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class EmbeddingPlan:
    """Row positions into the new catalog's good table, and ids of the live version that disappear."""

    new_rows: np.ndarray  # (a,) int64: ids not in the live version
    changed_rows: np.ndarray  # (c,) int64: same id, different text
    unchanged_rows: np.ndarray  # (u,) int64: same id, same text: vectors carried over
    carry_from: np.ndarray  # (u,) int64: row of each unchanged product in the live version's items
    deleted_ids: list[str]
    full: bool  # everything is embedded (no live version, or another encoder)

    @property
    def embed_rows(self) -> np.ndarray:
        return np.sort(np.concatenate([self.new_rows, self.changed_rows]))

    @property
    def is_noop(self) -> bool:
        """True when publishing would produce a version identical to the live one."""
        return not self.full and len(self.new_rows) == 0 and len(self.changed_rows) == 0 and not self.deleted_ids

    def counts(self) -> dict[str, int]:
        return {
            "new": int(len(self.new_rows)),
            "changed": int(len(self.changed_rows)),
            "unchanged": int(len(self.unchanged_rows)),
            "deleted": len(self.deleted_ids),
        }


def plan_embedding(catalog: pa.Table, live: pa.Table | None, *, same_encoder: bool) -> EmbeddingPlan:
    """``catalog`` and ``live``: tables with ``item_id`` and ``fingerprint`` (live may be None)."""
    n = catalog.num_rows
    empty = np.empty(0, dtype=np.int64)
    if live is None or not same_encoder:
        deleted = [] if live is None else sorted(set(live.column("item_id").to_pylist())
                                                 - set(catalog.column("item_id").to_pylist()))
        return EmbeddingPlan(np.arange(n, dtype=np.int64), empty, empty, empty, deleted, full=True)
    live_row = {item_id: i for i, item_id in enumerate(live.column("item_id").to_pylist())}
    live_fp = live.column("fingerprint").to_pylist()
    new, changed, unchanged, carry = [], [], [], []
    for row, (item_id, fp) in enumerate(zip(catalog.column("item_id").to_pylist(),
                                            catalog.column("fingerprint").to_pylist())):
        old = live_row.pop(item_id, None)
        if old is None:
            new.append(row)
        elif live_fp[old] != fp:
            changed.append(row)
        else:
            unchanged.append(row)
            carry.append(old)
    as_array = lambda xs: np.asarray(xs, dtype=np.int64)  # noqa: E731
    return EmbeddingPlan(as_array(new), as_array(changed), as_array(unchanged), as_array(carry),
                         sorted(live_row), full=False)
