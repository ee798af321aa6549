"""Two DDP processes on CPU (gloo): the run completes, each epoch's samples are split between the
ranks without overlap and together cover every file."""

from __future__ import annotations

import pytest
from train_support import run_cli

from avssl.train.checkpoint_io import safe_load


@pytest.mark.slow
def test_two_process_ddp_run_shards_each_epoch(tmp_path, manifest, tiny_config):
    keys = tmp_path / "keys"
    run_dir = tmp_path / "run"
    # 8 files, 2 ranks, batch 4: one step per epoch, so 3 steps are 3 whole epochs
    proc = run_cli("pretrain", "--config", str(tiny_config), "--data", str(manifest), "--out", str(run_dir),
                   "trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu",
                   "trainer.max_steps=3", env={"AVSSL_RECORD_KEYS": str(keys)}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 3

    consumed = {}
    for rank in (0, 1):
        for line in (keys / f"keys-rank{rank}.csv").read_text().split():
            step, index, epoch = map(int, line.split(","))
            consumed.setdefault((rank, epoch), []).append(index)
    for epoch in range(3):
        rank0, rank1 = consumed[(0, epoch)], consumed[(1, epoch)]
        assert len(rank0) == len(rank1) == 4
        assert not set(rank0) & set(rank1), f"epoch {epoch}: ranks share samples"
        assert sorted(rank0 + rank1) == list(range(8)), f"epoch {epoch}: not every file was seen"
    assert consumed[(0, 0)] != consumed[(0, 1)], "each epoch has its own order"
