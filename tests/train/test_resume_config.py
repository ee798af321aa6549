"""Which config changes a resume accepts: new schema keys at their defaults yes, changed values no."""

from __future__ import annotations

from pathlib import Path

import pytest

from avssl.config.schema import config_to_dict
from avssl.config.typed import ConfigError
from avssl.train.resume import check_resume_config
from train_support import tiny

CKPT = Path("run/checkpoints/last.ckpt")


def test_a_key_added_to_the_schema_after_the_run_started_is_its_default():
    config = tiny()
    saved = config_to_dict(config)
    del saved["data"]["backend"]  # as written by code that did not know the key yet (left at its default)
    check_resume_config({"avssl_config": saved}, config, CKPT)


def test_a_changed_value_is_refused_with_its_key():
    saved = config_to_dict(tiny())
    with pytest.raises(ConfigError, match="'optim.lr' differs"):
        check_resume_config({"avssl_config": saved}, tiny(**{"optim.lr": 0.5}), CKPT)


def test_a_resumable_change_is_accepted():
    saved = config_to_dict(tiny())
    check_resume_config({"avssl_config": saved}, tiny(**{"trainer.max_steps": 60}), CKPT)
