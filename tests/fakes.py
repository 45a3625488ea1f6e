"""Test doubles shared by the suites: time that moves only when code under test sleeps."""

from __future__ import annotations

import asyncio


class FakeTime:
    """A clock that only moves when the code under test sleeps: tests never really wait.

    fake = FakeTime()
    embed = GeminiEmbedding(..., clock=fake.clock, sleep=fake.sleep)
    ...
    assert fake.sleeps == [2.0]
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
