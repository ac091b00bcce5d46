import numpy as np
import pyarrow as pa

from coldstart.catalog.incremental import plan_embedding


def _t(pairs):
    return pa.table({"item_id": [p[0] for p in pairs], "fingerprint": [p[1] for p in pairs]})


def test_plan_new_changed_unchanged_deleted():
    live = _t([("a", "1"), ("b", "2"), ("c", "3")])
    catalog = _t([("b", "2"), ("a", "9"), ("d", "4")])
    plan = plan_embedding(catalog, live, same_encoder=True)
    assert plan.counts() == {"new": 1, "changed": 1, "unchanged": 1, "deleted": 1}
    assert plan.new_rows.tolist() == [2] and plan.changed_rows.tolist() == [1]
    assert plan.unchanged_rows.tolist() == [0] and plan.carry_from.tolist() == [1]
    assert plan.deleted_ids == ["c"] and plan.embed_rows.tolist() == [1, 2]
    assert not plan.is_noop and not plan.full


def test_noop_and_encoder_change():
    live = _t([("a", "1"), ("b", "2")])
    assert plan_embedding(_t([("b", "2"), ("a", "1")]), live, same_encoder=True).is_noop
    full = plan_embedding(_t([("a", "1")]), live, same_encoder=False)
    assert full.full and full.embed_rows.tolist() == [0] and full.deleted_ids == ["b"] and not full.is_noop
    first = plan_embedding(_t([("a", "1")]), None, same_encoder=False)
    assert first.full and np.array_equal(first.embed_rows, [0])
