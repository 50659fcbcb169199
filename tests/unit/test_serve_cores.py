"""`serve --workers N` sizes each worker's turn threads by its share of the cores."""

from __future__ import annotations

import pytest

from assistant.cli.serve import share_of_cores
from assistant_core.settings import Settings

pytestmark = pytest.mark.unit


def test_each_worker_gets_its_share_of_the_cores() -> None:
    settings = Settings()
    assert share_of_cores(settings, 2, cpus=2).turn_threads == 2  # 2 x (2 cores / 2 workers)
    assert share_of_cores(settings, 4, cpus=16).turn_threads == 8
    assert share_of_cores(settings, 8, cpus=2).turn_threads == 2  # never under one core's worth


def test_one_worker_or_a_configured_count_is_left_alone() -> None:
    assert share_of_cores(Settings(), 1, cpus=2).turn_threads == 0  # the default: all cores
    assert share_of_cores(Settings(turn_threads=6), 2, cpus=2).turn_threads == 6
