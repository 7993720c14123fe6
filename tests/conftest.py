"""Fixtures shared by the Python suites."""

import pytest


@pytest.fixture
def running():
    """`running(thing)` keeps a started server (anything with `stop()`) and stops it, last started
    first, when the test ends."""
    things = []

    def add(thing):
        things.append(thing)
        return thing

    yield add
    for t in reversed(things):
        t.stop()
