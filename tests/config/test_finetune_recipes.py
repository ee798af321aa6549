"""The fine-tuning recipes: every bundled one validates on the tiny models, the run's config takes the
model's network and data with the recipe's trainer and optimiser, overrides (short and dotted) land
on the right key, and mistakes name the key; `trainer.logger` is checked with a did-you-mean."""

from __future__ import annotations

import pytest

from avssl.config.bundled import bundled_recipe_names, resolve_config_path, resolve_recipe_path
from avssl.config.finetune import FinetuneSection, finetune_config_dict, read_recipe
from avssl.config.overrides import read_yaml
from avssl.config.typed import ConfigError, from_dict
from avssl.errors import UsageError
from avssl.methods.configs import config_from_dict

PROTOCOLS = ["ucf101-full", "ucf101-linear", "hmdb51-full", "hmdb51-linear", "esc50-audio"]


def run_config(model: str, recipe: str, *overrides: str):
    plain, section = finetune_config_dict(read_yaml(resolve_config_path(model)),
                                          read_recipe(resolve_recipe_path(recipe)), list(overrides))
    return config_from_dict(plain), from_dict(FinetuneSection, section, "finetune")


def test_every_protocol_ships_at_paper_and_cpu_scale():
    names = bundled_recipe_names()
    assert set(PROTOCOLS + [f"{p}-tiny" for p in PROTOCOLS] + ["default"]) == set(names)


@pytest.mark.parametrize("recipe", sorted(set(PROTOCOLS) | {f"{p}-tiny" for p in PROTOCOLS} | {"default"}))
def test_every_bundled_recipe_validates(recipe):
    config, section = run_config("avts-tiny", recipe)
    assert config.probe.manifest is None and config.model.video["name"] == "mc3_18-tiny"
    if recipe.startswith(("ucf101", "hmdb51")):
        assert section.splits == 3 and section.model == "video"
        assert section.mode == ("linear" if "linear" in recipe else "full")
    if recipe.startswith("esc50"):
        assert section.folds == [1, 2, 3, 4, 5] and section.model == "audio"


def test_the_run_takes_the_models_network_and_data_and_the_recipes_trainer():
    config, _ = run_config("avts-tiny", "ucf101-full")
    assert config.method.name == "avts" and config.data.logmel.n_mels == 64  # the model's input
    assert config.data.clip.frames == 16 and config.data.video_augment.size == 112  # the recipe's clip
    assert config.trainer.max_steps == 6000 and config.trainer.accelerator == "auto"  # not the pretraining run's
    assert config.optim.lr == pytest.approx(1e-4)
    tiny, _ = run_config("avts-tiny", "ucf101-full-tiny")
    assert tiny.data.clip.frames == 8 and tiny.data.video_augment.size == 32  # the model's own clip


def test_short_and_dotted_overrides():
    config, section = run_config("avts-tiny", "default", "max_steps=7", "batch_size=3", "lr=0.5", "dropout=0.1",
                                 "clips_per_video=4", "finetune.mode=linear", "trainer.logger=[csv,tensorboard]")
    assert (config.trainer.max_steps, config.data.batch_size, config.optim.lr) == (7, 3, 0.5)
    assert (section.dropout, section.clips_per_video, section.mode) == (0.1, 4, "linear")
    assert config.trainer.logger == ["csv", "tensorboard"]


@pytest.mark.parametrize("overrides, named", [
    (["max_step=2"], "did you mean 'max_steps'"),
    (["finetune.mdoe=linear"], "did you mean 'finetune.mode'"),
    (["finetune.model=av"], "finetune.model"),  # an av classifier needs an avcl model
    (["finetune.mode=lineal"], "did you mean 'linear'"),
    (["finetune.folds=[1]", "finetune.splits=3"], "finetune.folds"),
    (["trainer.logger=[csv,tensorbord]"], "did you mean 'tensorboard'"),
    (["trainer.logger=wandb,mlflow"], "trainer.logger"),
    (["trainer.logger=[csv,csv]"], "listed twice"),
])
def test_mistakes_name_the_key(overrides, named):
    from avssl.methods.finetune import build_classifier

    with pytest.raises(ConfigError, match=named.replace("(", r"\(")) as err:
        config, section = run_config("avts-tiny", "default", *overrides)
        build_classifier(config, section, 2)
    assert "Traceback" not in str(err.value)


def test_linear_av_is_refused_and_a_single_logger_name_is_a_list():
    with pytest.raises(ConfigError, match="finetune.mode"):
        run_config("avcl-tiny", "default", "finetune.model=av", "finetune.mode=linear")
    config, _ = run_config("avts-tiny", "default", "trainer.logger=tensorboard")
    assert config.trainer.logger == ["tensorboard"]


def test_unknown_recipe_lists_the_bundled_ones(tmp_path):
    with pytest.raises(UsageError, match="ucf101-full") as err:
        resolve_recipe_path("ucf-full")
    assert "--recipe 'ucf-full'" in str(err.value)
    bad = tmp_path / "r.yaml"
    bad.write_text("finetune: {mode: full}\ntrainr: {max_steps: 3}\n")
    with pytest.raises(ConfigError, match="did you mean 'trainer'"):
        read_recipe(bad)
