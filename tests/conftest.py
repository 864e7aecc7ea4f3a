"""Shared test set-up: keep every test offline and away from the user's cache."""

import os

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Point semprobe's cache at a per-session temporary folder and forbid hub downloads."""
    cache = tmp_path_factory.getbasetemp() / "semprobe-cache"
    monkeypatch.setenv("SEMPROBE_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("SEMPROBE_DATA", raising=False)
    return cache


def pytest_report_header(config):
    return f"semprobe tests: CI={os.environ.get('CI', '')!r}"
