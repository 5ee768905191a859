"""Project settings. https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

import os

from kedro.config import OmegaConfigLoader

from fraud_kedro.distributed.cluster import DaskClusterHooks
from fraud_kedro.hooks import (
    PromotionHooks,
    ReadOnlyDataHooks,
    RetrainingHooks,
    TypedParamsLoggingHooks,
)
from fraud_kedro.monitoring.webhook import AlertWebhookHooks


def _env(name: str, default: str | None = None) -> str | None:
    """``${env:NAME,default}``: a non-secret setting (e.g. a tracking URI) from the environment."""
    return os.environ.get(name, default)


HOOKS = (
    ReadOnlyDataHooks(),
    PromotionHooks(),
    RetrainingHooks(),
    DaskClusterHooks(),
    TypedParamsLoggingHooks(),
    AlertWebhookHooks(),
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {"env": _env},
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
    },
}
