"""One settings object for the whole assistant: env vars `ASSISTANT_*`, an optional TOML file,
defaults that work."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from assistant_core.errors import ConfigError

CONFIG_FILE_ENV = "ASSISTANT_CONFIG"
REDACT_KINDS = ("emails", "phones", "cards", "ibans", "ips")
"""What ASSISTANT_REDACT may name (dialog.insights.redaction masks each)."""


def default_data_dir() -> Path:
    """XDG data dir, so a user's conversations and index live where they expect."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "assistant"


def config_file() -> Path:
    """The TOML file read at start-up: `$ASSISTANT_CONFIG`, else `./assistant.toml`."""
    return Path(os.environ.get(CONFIG_FILE_ENV, "assistant.toml"))


class Settings(BaseSettings):
    """Validated configuration.

    >>> Settings(data_dir="/tmp/a").database_url
    'sqlite:////tmp/a/assistant.db'
    """

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    model_dir: Path | None = None
    chat_model: str = ""
    embedding_model: str = ""
    llm_base_url: str = ""
    llm_api_key: SecretStr | None = None
    llm_model: str = "default"
    llm_timeout_s: float = Field(default=120.0, gt=0)
    max_new_tokens: int = Field(default=160, ge=1, le=8192)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_k: int = Field(default=3, ge=1, le=50)
    min_score: float = Field(default=0.2, ge=-1.0, le=1.0)
    history_turns: int = Field(default=2, ge=0, le=50)
    chunk_size: int = Field(default=600, ge=100, le=8000)
    chunk_overlap: int = Field(default=80, ge=0, le=2000)
    max_message_chars: int = Field(default=4000, ge=1)
    device: str = "auto"
    db_busy_timeout_s: float = Field(default=10.0, gt=0, le=300)
    """How long a turn waits for a locked SQLite database before giving up (503 over HTTP)."""
    # LM server (`assistant model serve` and the embedded server used when llm_base_url is empty)
    llm_host: str = "127.0.0.1"
    llm_port: int = Field(default=8000, ge=1, le=65535)
    llm_dtype: str = Field(default="auto", pattern="^(auto|bfloat16|float16|float32)$")
    llm_max_batch: int = Field(default=32, ge=1, le=1024)
    llm_max_queue: int = Field(default=64, ge=0, le=100000)
    llm_request_timeout_s: float = Field(default=120.0, gt=0)
    llm_cpu_threads: int = Field(default=0, ge=0, le=1024)
    llm_loop_ngram: int = Field(default=6, ge=0, le=64)
    """LM server's loop guard: no run of this many tokens a third time in one answer (0: off)."""
    # knowledge base
    retrieval: Literal["hybrid", "vector"] = "hybrid"
    index_backend: Literal["auto", "cpu", "gpu"] = "auto"
    flat_index_limit: int = Field(default=50_000, ge=1)
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    embedding_backend: Literal["auto", "torch", "onnx"] = "auto"
    """How queries are embedded on a CPU: auto uses ONNX Runtime when the model exports cleanly."""
    ingest_batch_chunks: int = Field(default=512, ge=1)
    # front ends
    webhook_secret: SecretStr | None = None
    webhook_secret_previous: SecretStr | None = None
    webhook_tolerance_s: int = Field(default=300, ge=1)
    max_body_bytes: int = Field(default=65536, ge=256)
    turn_threads: int = Field(default=0, ge=0, le=256)
    """Turns one server process runs at once; 0 = twice the CPU cores, at most 8 (with
    `serve --workers N`, twice each worker's share of the cores). Threads beyond the
    cores hold the GIL against the event loop that acknowledges webhooks; raise it when a remote LM
    batches many requests."""
    callback_hosts: str = ""
    """Hosts a generic webhook's `callback_url` may name, comma-separated (`crm.example.com`,
    `.example.com` for its subdomains too); empty allows any host."""
    callback_attempts: int = Field(default=5, ge=1, le=20)
    callback_backoff_s: float = Field(default=1.0, ge=0.0)
    """`callback_attempts` and `callback_backoff_s` are no longer used (kept so older configs
    load): callbacks follow `delivery_retry_schedule`, across restarts."""
    delivery_retry_schedule: str = "10s,1m,5m,15m,30m,1h,2h,4h,8h,12h,16h,24h"
    """Waits between tries of a webhook delivery's callback or Chatwoot call (and of a failed turn),
    comma-separated (`30`, `30s`, `5m`, `2h`, `1d`); when they are used up the delivery is
    dead-lettered (`assistant deliveries list --status failed`). The default spans about 2.8
    days."""
    delivery_lease_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    """How long a worker holds a delivery without renewing it (renewed every third of it while
    alive); a dead worker's delivery is taken again after at most this plus `delivery_poll_s`."""
    delivery_poll_s: float = Field(default=1.0, gt=0.0, le=60.0)
    """How often an idle worker looks for deliveries queued by other processes."""
    delivery_workers: int = Field(default=0, ge=0, le=256)
    """Deliveries one server process works on at once; 0 = as many as `turn_threads`."""
    shutdown_grace_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    """On SIGTERM, how long in-flight deliveries may finish before their leases are released."""
    auth: SecretStr | None = None
    admin_auth: SecretStr | None = None
    """`user:password[,user:password]` for the admin area (uploads, knowledge base, hand back),
    separate from the optional customer login `auth`; unset: no admin area is served (the CLI
    remains)."""
    cors_origins: str = ""
    """Browser origins allowed to call the REST API, comma-separated (`https://shop.example.com`),
    or `*`; empty: no CORS headers, so other sites' pages cannot read its answers."""
    frame_ancestors: str = ""
    """Origins allowed to embed the web pages in a frame, comma-separated; empty: this server
    only (`frame-ancestors 'self'`)."""
    insecure_serve_without_keys: bool = False
    """Let `assistant serve` listen beyond loopback with no API key (a warning at every start);
    for a gateway that authenticates in front of it."""
    upload_dir: Path | None = None
    chatwoot_base_url: str = ""
    chatwoot_api_token: SecretStr | None = None
    chatwoot_webhook_secret: SecretStr | None = None
    rate_limit_api_per_minute: int = Field(default=120, ge=0)
    rate_limit_webhook_per_minute: int = Field(default=1200, ge=0)
    rate_limit_web_per_minute: int = Field(default=60, ge=0)
    redis_url: str = ""
    """Redis for what several processes and hosts share: the rate limits' counts
    (`redis://host:6379/0`); empty: each process counts its own requests."""
    redis_prefix: str = Field(default="assistant", min_length=1, max_length=64)
    """Prefix of this deployment's Redis keys (several deployments may share one Redis)."""
    max_document_bytes: int = Field(default=20_000_000, ge=1024)
    """Largest document the web chat accepts for upload."""
    # website sources (`assistant ingest URL`, `assistant kb sync`)
    web_hosts: str = ""
    """Hosts whose sites may be crawled, comma-separated (`example.com` covers its subdomains);
    empty: the host of any URL given. A crawl never leaves its start URL's host and folder."""
    web_concurrency: int = Field(default=2, ge=1, le=16)
    """Pages fetched at once from one site."""
    web_delay_s: float = Field(default=0.5, ge=0.0, le=60.0)
    """Pause between two requests to a site (robots.txt's Crawl-delay wins when longer)."""
    web_max_pages: int = Field(default=500, ge=1)
    """Pages one crawl of a site fetches at most."""
    web_timeout_s: float = Field(default=15.0, gt=0, le=300)
    web_user_agent: str = "assistant-crawler/1.0"
    """The crawler's name, as robots.txt rules address it."""
    # dialog
    domain: str = "none"
    """A YAML/TOML domain file (`assistant init` writes one), `none` (a neutral assistant that
    answers from the knowledge base, no forms or tools), or `demo` (the bundled example shop)."""
    tools: str = ""
    """`package.module:function` returning a ToolRegistry for a custom domain."""
    turn_lock_timeout_s: float = Field(default=60.0, gt=0)
    summarize_after: int = Field(default=4, ge=1, le=100)
    route_with_model: bool = True
    min_quote_similarity: float | None = Field(default=None, ge=-1.0, le=1.0)
    """An answer needs a passage sentence at least this similar to the question (a cosine of the
    embedding model, so its scale depends on the model); unset: the value known for the model
    (`assistant.wiring.QUOTE_FLOORS`: 0.5 for all-MiniLM-L6-v2), else no floor."""
    check_relevance: bool = True
    """Abstain unless the passages can answer (README, "Trustworthy answers"); false: answer from
    any passage above `min_score`."""
    link_hosts: str = ""
    """Hosts answers may link to, comma-separated (`example.com` covers its subdomains too); links
    to any other host are removed as the answer streams. Empty: no links at all."""

    # insights
    retention_days: int = Field(default=0, ge=0, le=36500)
    """`assistant serve` purges conversations idle for longer than this, their report figures
    rolled up first; 0 keeps them forever."""
    redact: str = ""
    """Personal data masked in stored text and every export, comma-separated: emails, phones,
    cards, ibans, ips (slot values stay as the tools need them)."""

    @field_validator("redact")
    @classmethod
    def _redact_kinds(cls, value: str) -> str:
        unknown = [k for k in value.split(",") if k.strip() and k.strip() not in REDACT_KINDS]
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}; known: {', '.join(REDACT_KINDS)}")
        return value

    @property
    def allowed_link_hosts(self) -> tuple[str, ...]:
        """`link_hosts` as a tuple of lower-case host names."""
        hosts = (h.strip().lstrip(".").lower() for h in self.link_hosts.split(","))
        return tuple(h for h in hosts if h)

    @field_validator("domain")
    @classmethod
    def _domain_file(cls, value: str) -> str:
        if value not in {"demo", "none", ""} and not Path(value).expanduser().is_file():
            raise ValueError("must be demo, none, or an existing .yaml/.toml domain file")
        return value

    @field_validator("tools")
    @classmethod
    def _tools_ref(cls, value: str) -> str:
        if value and ":" not in value:
            raise ValueError("must look like package.module:function or file.py:function")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.split(":", 1)[0].startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("llm_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("cors_origins", "frame_ancestors")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in (o.strip().rstrip("/") for o in value.split(",") if o.strip()):
            if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com")
        return value

    @field_validator("delivery_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_durations(value)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in {"auto", "cpu", "cuda"} and not value.startswith("cuda:"):
            raise ValueError("must be auto, cpu, cuda or cuda:N")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    def model_post_init(self, __context: Any) -> None:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'assistant.db'}"
        if self.model_dir is None:
            self.model_dir = self.data_dir / "models"
        if self.upload_dir is None:  # front ends
            self.upload_dir = self.data_dir / "uploads"

    @property
    def index_dir(self) -> Path:
        """Where the FAISS index files live."""
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        """Where converted models are cached."""
        assert self.model_dir is not None
        return self.model_dir


_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_durations(text: str) -> tuple[float, ...]:
    """`"10s,5m,2h"` as seconds; a settings value, so a wrong one is a ValueError naming it."""
    delays = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        unit = _UNITS.get(part[-1], 0.0)
        try:
            delays.append(float(part[:-1]) * unit if unit else float(part))
        except ValueError as err:
            raise ValueError(f"{part!r} is not a duration like 30s, 5m, 2h or 1d") from err
        if delays[-1] < 0:
            raise ValueError(f"{part!r} is negative")
    return tuple(delays)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one ConfigError that names each setting."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err)) from err


def describe_validation_error(err: ValidationError) -> str:
    """`ASSISTANT_TOP_K: Input should be greater than or equal to 1 (got 0)` lines; secrets never
    echoed."""
    lines = []
    for problem in err.errors():
        name = ".".join(str(part) for part in problem["loc"]) or "settings"
        env = f"ASSISTANT_{name.upper()}"
        shown = f"got {problem.get('input')!r}" if _may_echo(name) else "value hidden"
        lines.append(f"{env}: {problem['msg']} ({shown})")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _may_echo(name: str) -> bool:
    """Only known, non-secret settings have their wrong value shown; a typo may be a secret's
    name."""
    field = Settings.model_fields.get(name.split(".")[0])
    return field is not None and "SecretStr" not in repr(field.annotation)
