"""The Prometheus text: counts, histograms, hit ratios and the served index version, in a private registry."""

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from coldstart.serving.prometheus import ServiceMetrics


def _samples(text: bytes) -> dict:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_counts_ratios_and_index_state():
    metrics = ServiceMetrics()
    metrics.observe_request("/recommend", 200, 0.02)
    metrics.observe_request("/recommend", 200, 0.04)
    metrics.observe_request("/recommend", 422, 0.001)
    metrics.observe_query(cache_hit=False, batch_size=8)
    metrics.observe_query(cache_hit=True, batch_size=0)
    metrics.observe_query(cache_hit=True, batch_size=0)
    metrics.observe_clicks(known=3, unknown=1)
    metrics.observe_search(batch_size=4)
    metrics.observe_stage("encode", 0.01)
    status = {"version": "v2", "items": 54667, "loaded_at": 1.7e9, "swaps": 1, "rejected": {"v3": "bad checksum"}}
    s = _samples(metrics.render(status))

    assert s[("coldstart_requests_total", (("endpoint", "/recommend"), ("status", "200")))] == 2
    assert s[("coldstart_requests_total", (("endpoint", "/recommend"), ("status", "422")))] == 1
    assert s[("coldstart_request_latency_seconds_count", (("endpoint", "/recommend"),))] == 3
    assert s[("coldstart_request_latency_seconds_bucket", (("endpoint", "/recommend"), ("le", "0.03")))] == 2
    assert s[("coldstart_query_batch_size_count", ())] == 1  # cache hits are not in a forward batch
    assert s[("coldstart_query_batch_size_sum", ())] == 8
    assert s[("coldstart_search_batch_size_sum", ())] == 4
    assert s[("coldstart_query_cache_lookups_total", (("result", "hit"),))] == 2
    assert s[("coldstart_query_cache_hit_ratio", ())] == pytest.approx(2 / 3)
    assert s[("coldstart_click_vector_hit_ratio", ())] == pytest.approx(0.75)
    assert s[("coldstart_index_version_info", (("version", "v2"),))] == 1
    assert s[("coldstart_index_items", ())] == 54667
    assert s[("coldstart_index_swaps", ())] == 1
    assert s[("coldstart_index_rejected_versions", ())] == 1


def test_version_label_follows_a_swap_and_registries_are_private():
    metrics = ServiceMetrics()
    metrics.render({"version": "v1", "items": 10, "loaded_at": 1.0, "swaps": 0, "rejected": {}})
    s = _samples(metrics.render({"version": "v2", "items": 10, "loaded_at": 2.0, "swaps": 1, "rejected": {}}))
    versions = {labels for name, labels in s if name == "coldstart_index_version_info"}
    assert versions == {(("version", "v2"),)}  # the old version's series is gone, not left at 1
    ServiceMetrics()  # a second instance in one process must not clash (Ray's libraries use the global one)
    assert not {m.name for m in REGISTRY.collect()} & {"coldstart_requests", "coldstart_query_batch_size"}


def test_no_index_yet():
    s = _samples(ServiceMetrics().render(None))
    assert not any(name == "coldstart_index_version_info" for name, _ in s)
