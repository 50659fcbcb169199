"""Reliability fixtures: the real packaged chat model, shared with the integration tests."""

from tests.integration.conftest import chat_model_dir

__all__ = ["chat_model_dir"]
