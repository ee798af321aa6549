"""The configs shipped with avssl (src/avssl/configs, also reachable as configs/ in a checkout)."""

from __future__ import annotations

from pathlib import Path

from avssl.errors import UsageError

BUNDLED_CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def bundled_config_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_CONFIGS.glob("*.yaml"))


def resolve_config_path(name: str) -> Path:
    """A YAML path as given, else a bundled config by name (`avts-tiny`, with or without .yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir():
        raise UsageError(f"config {name!r} is a directory; give a YAML file in it or a bundled config name")
    bundled = BUNDLED_CONFIGS / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if "/" not in name and bundled.is_file():
        return bundled
    raise UsageError(f"config {name!r}: no such file, nor a bundled config "
                     f"(bundled: {', '.join(bundled_config_names())})")


BUNDLED_RECIPES = BUNDLED_CONFIGS / "finetune"


def bundled_recipe_names() -> list[str]:
    return sorted(p.stem for p in BUNDLED_RECIPES.glob("*.yaml"))


def resolve_recipe_path(name: str) -> Path:
    """A fine-tuning recipe: a YAML path as given, else a bundled recipe by name (`ucf101-full`, ...)."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = BUNDLED_RECIPES / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if "/" not in name and bundled.is_file():
        return bundled
    raise UsageError(f"--recipe {name!r}: no such file, nor a bundled recipe "
                     f"(bundled: {', '.join(bundled_recipe_names())})")
