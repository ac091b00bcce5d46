"""The batcher: a lone request runs at once, requests arriving during a batch form the next one, failures stay
with their batch, cancelled requests are skipped."""

from __future__ import annotations

import asyncio

import pytest

from coldstart.serving.batching import Batcher


def test_a_lone_request_runs_at_once_and_arrivals_during_a_batch_form_the_next():
    batches: list[list[int]] = []

    async def run(items):
        batches.append(list(items))
        await asyncio.sleep(0.05)
        return [i * 10 for i in items]

    async def main():
        batcher = Batcher(run, max_batch_size=4)
        first = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.01)  # the first batch is running
        rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 7)]
        await asyncio.sleep(0)
        assert batcher.pending == 7  # one running, six waiting: what admission control counts
        out = await first, await asyncio.gather(*rest)
        assert batcher.pending == 0
        return out

    first, rest = asyncio.run(main())
    assert first == 0 and rest == [10, 20, 30, 40, 50, 60]
    assert batches == [[0], [1, 2, 3, 4], [5, 6]]


def test_a_failing_batch_fails_only_its_requests():
    async def run(items):
        await asyncio.sleep(0.01)
        if 1 in items:
            raise ValueError("bad batch")
        return items

    async def main():
        batcher = Batcher(run, max_batch_size=8)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="bad batch"):
            await first
        return await batcher.submit(2)

    assert asyncio.run(main()) == 2


def test_a_cancelled_request_is_left_out_of_its_batch():
    seen: list[list[int]] = []

    async def run(items):
        seen.append(list(items))
        await asyncio.sleep(0.02)
        return items

    async def main():
        batcher = Batcher(run, max_batch_size=8)
        busy = asyncio.create_task(batcher.submit(0))
        await asyncio.sleep(0.005)
        gone = asyncio.create_task(batcher.submit(1))
        kept = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        return await busy, await kept

    assert asyncio.run(main()) == (0, 2)
    assert seen == [[0], [2]]
