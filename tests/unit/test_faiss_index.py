import numpy as np
import pytest

from coldstart.ranking.faiss_index import IndexConfig, VectorIndex


def _unit(rng, n, d):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centers = _unit(rng, 20, 32)
    items = centers[rng.integers(0, 20, 2000)] + 0.3 * rng.normal(size=(2000, 32)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    queries = _unit(rng, 50, 32)
    return [f"id{i}" for i in range(2000)], items.astype(np.float32), queries


def _brute_force(items, queries, k):
    scores = queries @ items.T
    return np.argsort(-scores, axis=1)[:, :k]


def test_flat_matches_brute_force(data):
    ids, items, queries = data
    index = VectorIndex.build(ids, items)
    expected = _brute_force(items, queries, 10)
    got = index.search(queries, 10)
    for q, row, hits in zip(queries, expected, got):
        assert [h[0] for h in hits] == [ids[i] for i in row]
        assert [h[1] for h in hits] == pytest.approx([float(q @ items[i]) for i in row], abs=1e-5)


@pytest.mark.parametrize("kind,min_recall", [("hnsw", 0.9), ("ivf_sq8", 0.8), ("ivf_pq", 0.5)])
def test_approximate_kinds_recall(data, kind, min_recall):
    ids, items, queries = data
    index = VectorIndex.build(ids, items, IndexConfig(kind=kind, nprobe=32))
    expected = _brute_force(items, queries, 10)
    got = index.search(queries, 10)
    recall = np.mean([len({ids[i] for i in e} & {h[0] for h in g}) / 10 for e, g in zip(expected, got)])
    assert recall >= min_recall


def test_exclusion_and_serialisation(data):
    ids, items, queries = data
    index = VectorIndex.build(ids, items)
    top = [h[0] for h in index.search(queries[:1], 5)[0]]
    excluded = index.search(queries[:1], 5, exclude=[top[:2]])[0]
    assert len(excluded) == 5 and not set(top[:2]) & {h[0] for h in excluded}
    assert [h[0] for h in excluded][:3] == top[2:5]
    clone = VectorIndex.deserialize(index.serialize(), ids, items, index.config)
    assert clone.search(queries[:3], 5) == index.search(queries[:3], 5)


def test_vectors_for_reports_unknown(data):
    ids, items, _ = data
    index = VectorIndex.build(ids, items)
    vecs, unknown = index.vectors_for(["id3", "nope", "id1"])
    np.testing.assert_array_equal(vecs, items[[3, 1]])
    assert unknown == ["nope"]


def test_refuses_empty_and_duplicates():
    with pytest.raises(ValueError, match="zero items"):
        VectorIndex.build([], np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="unique"):
        VectorIndex.build(["a", "a"], np.ones((2, 4), np.float32))


def test_batched_flat_search_equals_faiss_one_query_at_a_time(data):
    """Batches of GEMM_MIN_QUERIES or more go through one BLAS product; singles through FAISS: same answers."""
    from coldstart.ranking.faiss_index import GEMM_MIN_QUERIES

    ids, items, queries = data
    index = VectorIndex.build(ids, items)
    batch = queries[: GEMM_MIN_QUERIES + 3]
    exclude = [[ids[0], ids[5]]] * len(batch)
    together = index.search(batch, 10, exclude=exclude)
    alone = [index.search(q[None], 10, exclude=[e])[0] for q, e in zip(batch, exclude)]
    for t, a in zip(together, alone):
        assert [h[0] for h in t] == [h[0] for h in a]
        assert [h[1] for h in t] == pytest.approx([h[1] for h in a], abs=1e-5)
    everything = index.search(batch, len(ids))  # depth = n: no partition needed
    assert all(len(hits) == len(ids) for hits in everything)
