"""One settings object: ``DIFFPROMPT_*`` environment variables and an optional TOML file.

This is the only module that reads the environment. Components take explicit arguments; the CLI
builds them from ``Settings``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource


def _default_home() -> Path:
    return Path(os.environ.get("DIFFPROMPT_HOME") or Path.home() / ".diffprompt")


def _check_toml(path: Path) -> None:
    """A config file that is unreadable, not UTF-8 or not TOML is a ``ConfigError`` naming it."""
    import tomllib

    from diffprompt.errors import ConfigError

    try:
        tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the config file {path} is not UTF-8 text; save it as UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None


class Settings(BaseSettings):
    """Process-wide settings. Precedence: init kwargs > env vars > TOML file > defaults.

    The TOML file is ``$DIFFPROMPT_CONFIG`` if set, else ``<home>/config.toml`` when it exists.
    """

    model_config = SettingsConfigDict(env_prefix="DIFFPROMPT_", extra="ignore")

    home: Path = Field(default_factory=_default_home, description="Data directory (DB, spool, reports).")
    db_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite under home.")
    spool_dir: Path | None = Field(default=None, description="Where the recorder spools traces while the DB is down.")
    # Real-mode model endpoints (OpenAI-compatible). Read here, passed explicitly elsewhere.
    openai_api_key: str | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    tau_data: Path | None = Field(default=None, description="Directory with official τ-bench data.")
    dlm: str = Field(default="builtin", description="DLM spec: 'builtin', a local checkpoint dir or a Hub id.")
    log_level: str = "INFO"
    recorder_batch_size: int = Field(default=256, ge=1)
    recorder_flush_interval_s: float = Field(default=0.05, gt=0)
    prompt_refresh_s: float = Field(default=2.0, gt=0, description="How often live processes check for promotions.")

    @field_validator("home", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(v).expanduser() if v else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = os.environ.get("DIFFPROMPT_CONFIG") or str(_default_home() / "config.toml")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if Path(toml).is_file():
            _check_toml(Path(toml))
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @property
    def resolved_db_url(self) -> str:
        """The DB URL to use: explicit, else ``sqlite:///<home>/diffprompt.db``."""
        return self.db_url or f"sqlite:///{self.home / 'diffprompt.db'}"

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or self.home / "spool"

    @property
    def offline(self) -> bool:
        """Offline mode: no API key configured."""
        return not self.openai_api_key
