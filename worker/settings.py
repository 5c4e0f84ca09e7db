"""One typed settings object, read once from the environment at start (SPEC 6 and 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from models.detector import MAX_IMGSZ

RUNPOD_VOLUME_MODELS = Path("/runpod-volume/models")
# a Hugging Face repository id: <org>/<name>
REPO_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
# where RunPod's cached models appear on a worker (SPEC 8)
RUNPOD_HF_CACHE = Path("/runpod-volume/huggingface-cache/hub")


def default_model_dir() -> Path:
    """The network volume's model folder when the volume is mounted, else a folder beside the code."""
    return RUNPOD_VOLUME_MODELS if RUNPOD_VOLUME_MODELS.exists() else Path("volume/models")


def default_hf_cache() -> Path | None:
    """RunPod's model cache when the endpoint has one, else none."""
    return RUNPOD_HF_CACHE if RUNPOD_HF_CACHE.is_dir() else None


SettingsT = TypeVar("SettingsT", bound="Settings")


class ConfigError(Exception):
    """The environment holds a value the worker cannot start with."""


class Settings(BaseSettings):
    """Every environment variable the worker reads. Names are the variables' names, case-insensitive."""

    # an empty variable (a blank field in RunPod's form) is unset, not the current folder
    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, env_ignore_empty=True
    )

    model_dir: Path = Field(default_factory=default_model_dir)
    yolo_weights: str = "yolov8s.pt"
    clip_model: str = "clip-vit-base-patch32"
    # RunPod's cached models (SPEC 8): read when MODEL_DIR does not hold a model
    hf_hub_cache: Path | None = Field(default_factory=default_hf_cache)
    clip_model_id: str = Field(default="openai/clip-vit-base-patch32", pattern=REPO_ID)
    yolo_model_id: str = Field(default="Ultralytics/YOLOv8", pattern=REPO_ID)
    data_dir: Path = Path("data")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    half: Literal["auto", "true", "false"] = "auto"
    torch_threads: int | None = Field(default=None, ge=1, le=256)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    mug_classes: Annotated[tuple[str, ...], NoDecode] = ("cup", "mug")
    mug_score_min: float = Field(default=0.5, ge=0.0, le=1.0)
    reference_sizes_mm: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: {"laptop": 310.0, "keyboard": 440.0, "cup": 120.0}
    )

    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(default=50_000_000, ge=1)
    max_batch: int = Field(default=64, ge=1, le=1024)
    allow_private_urls: bool = False
    url_timeout_s: float = Field(default=15.0, gt=0)
    url_max_redirects: int = Field(default=5, ge=0, le=20)

    # SPEC 9: jobs taken at once (RunPod's concurrency_modifier; 1: one at a time), and how the
    # model thread gathers their images (at most this many per call, waiting this long for company)
    max_concurrency: int = Field(default=4, ge=1, le=64)
    batch_max_images: int = Field(default=32, ge=1, le=1024)
    batch_wait_ms: float = Field(default=5.0, ge=0, le=1000)

    result_cache_size: int = Field(default=256, ge=0)
    warmup_imgsz: int = Field(default=640, ge=32, le=MAX_IMGSZ)  # no job may ask for more

    # Production stores (SPEC 5). Unset: the embedded defaults of SPEC 6.
    mongodb_uri: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MONGODB_URI", "MONGODB_ATLAS_URI")
    )
    mongodb_db: str = "mugpos"
    r2_endpoint_url: str | None = None
    r2_access_key_id: SecretStr | None = None
    r2_secret_access_key: SecretStr | None = None
    r2_bucket: str | None = Field(
        default=None, validation_alias=AliasChoices("R2_BUCKET", "R2_BUCKET_NAME")
    )
    r2_region: str = "auto"
    presign_ttl_s: int = Field(default=7 * 24 * 3600, ge=1, le=7 * 24 * 3600)
    redis_url: SecretStr | None = None
    redis_host: str | None = None
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    cache_ttl_s: int = Field(default=24 * 3600, ge=1)
    cache_max_entry_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    store_timeout_s: float = Field(default=5.0, gt=0, le=120)
    similar_scan_limit: int = Field(default=2000, ge=1)
    vector_index: str = "embedding_index"

    # SPEC 11: an analysis with a failed rule (of at least this severity) is POSTed here, signed
    violation_webhook_url: str | None = Field(default=None, max_length=2048)
    webhook_secret: SecretStr | None = None
    webhook_min_severity: Literal["info", "warning", "critical"] = "info"
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _webhook_complete(self) -> Settings:
        url = self.violation_webhook_url
        if url is None:
            return self
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError("VIOLATION_WEBHOOK_URL must be an http or https URL")
        if self.webhook_secret is None or not self.webhook_secret.get_secret_value():
            raise ValueError("WEBHOOK_SECRET is required when VIOLATION_WEBHOOK_URL is set")
        return self

    @model_validator(mode="after")
    def _r2_complete(self) -> Settings:
        given = [self.r2_endpoint_url, self.r2_access_key_id, self.r2_secret_access_key]
        if any(value is not None for value in given) and self.r2_bucket is None:
            raise ValueError("R2_BUCKET (or R2_BUCKET_NAME) is required when R2_* is set")
        return self

    @property
    def redis_configured(self) -> bool:
        return self.redis_url is not None or self.redis_host is not None

    @field_validator("mug_classes", mode="before")
    @classmethod
    def _split_classes(cls, value: object) -> object:
        if isinstance(value, str):
            names = tuple(name.strip().lower() for name in value.split(",") if name.strip())
            if not names:
                raise ValueError("expected a comma-separated list of class names, e.g. 'cup,mug'")
            return names
        return value

    @field_validator("reference_sizes_mm", mode="before")
    @classmethod
    def _parse_sizes(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        sizes: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, _, size = item.partition(":")
            try:
                mm = float(size)
            except ValueError:
                mm = 0.0
            if not name.strip() or mm <= 0:
                raise ValueError(
                    f"expected 'class:mm' pairs such as 'laptop:310,keyboard:440', got {item!r}"
                )
            sizes[name.strip().lower()] = mm
        return sizes

    @property
    def runtime_dir(self) -> Path:
        """Where the model libraries may write their own settings and caches (never the network)."""
        return (self.data_dir / ".runtime").absolute()


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; a bad value becomes one readable ConfigError naming the variable."""
    return read_settings(Settings, **overrides)


def read_settings(kind: type[SettingsT], **overrides: Any) -> SettingsT:
    """load_settings for a program that adds its own settings to the worker's (the dashboard)."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
