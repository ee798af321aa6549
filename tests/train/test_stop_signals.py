"""The pieces of a clean stop: exit codes per signal, the rank a launcher gives a process (only rank 0
takes the run folder's lock), SLURM without Lightning's auto-requeue, loader workers that leave the
stop signals to the main process."""

from __future__ import annotations

import signal

import pytest

from avssl.train.engine import cluster_plugins
from avssl.train.run_dir import RANK_VARIABLES, is_launch_rank_zero
from avssl.train.signals import RunStopped, StopRequest, ignore_stop_signals_in_worker


def test_exit_codes_are_the_shells_for_the_signal():
    assert RunStopped(signal.SIGTERM, 7).exit_code == 143
    assert RunStopped(signal.SIGINT, 7).exit_code == 130
    assert str(RunStopped(signal.SIGTERM, 7)) == "stopped at step 7 by SIGTERM; run the same command to resume"


def test_a_signal_sets_the_request_and_the_handlers_are_restored(monkeypatch):
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("env, zero", [({}, True), ({"RANK": "0", "LOCAL_RANK": "0"}, True), ({"RANK": "3"}, False),
                                       ({"LOCAL_RANK": "1"}, False), ({"SLURM_PROCID": "0", "LOCAL_RANK": "1"}, False),
                                       ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False), ({"SLURM_PROCID": "2"}, False)])
def test_only_global_rank_0_is_rank_zero(monkeypatch, env, zero):
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_launch_rank_zero() is zero


def test_under_slurm_lightnings_auto_requeue_is_off(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "pretrain")
    (environment,) = cluster_plugins()
    assert environment.auto_requeue is False
    monkeypatch.delenv("SLURM_NTASKS")
    assert cluster_plugins() == []


def test_a_loader_worker_ignores_the_stop_signals():
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        ignore_stop_signals_in_worker()
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in saved)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
