"""The spoken-letters world and `avssl bench learn` on a stand-in of klettres-data (tones, not speech):
the glyph comes on screen with each utterance and stays for the same time whatever the recording's
length, the renders differ, the benchmark runs end to end and reports each target."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from avssl.bench import letters
from avssl.errors import UsageError
from avssl.media.writer import write_media

RATE = 16000


def fake_klettres(root, voices=("aa", "bb")) -> str:
    """A klettres-like tree: per voice a sounds.xml naming A-Z, each a tone in a .wav file, the k-th
    letter's 0.2 + 0.01 k s long (the recordings differ in length, as real ones do)."""
    base = root / "klettres-data" / "usr" / "share" / "klettres"
    for v, voice in enumerate(voices):
        (base / voice / "alpha").mkdir(parents=True)
        entries = []
        for k, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
            t = np.arange(int(0.6 * RATE)) / RATE
            pitch = 200 + 40 * k + 15 * v
            tone = np.where((t > 0.15) & (t < 0.35 + 0.01 * k), 0.4 * np.sin(2 * np.pi * pitch * t), 0.0)
            write_media(base / voice / "alpha" / f"{letter.lower()}.wav", None, audio=tone.astype(np.float32),
                        sample_rate=RATE)
            entries.append(f'    <sound name="{letter}" file="{voice}/alpha/{letter.lower()}.wav" />')
        (base / voice / "sounds.xml").write_text("<klettres><language><alphabet>\n" + "\n".join(entries)
                                                 + "\n</alphabet></language></klettres>\n", encoding="utf-8")
    # a voice without all 26 letters is left out
    (base / "xx" / "alpha").mkdir(parents=True)
    (base / "xx" / "sounds.xml").write_text('<klettres><alphabet><sound name="A" file="xx/alpha/a.ogg" />'
                                            "</alphabet></klettres>", encoding="utf-8")
    return str(base)


def test_recordings_are_read_from_sounds_xml(tmp_path):
    root = fake_klettres(tmp_path)
    assert letters.fetch_klettres(str(tmp_path)) == root or os.path.isdir("/usr/share/klettres")  # no download
    found = letters.find_recordings(root)
    assert len(found) == 52 and {r.voice for r in found} == {"aa", "bb"}
    assert [r.letter for r in found[:3]] == ["A", "B", "C"] and found[0].path.endswith("aa/alpha/a.wav")


def glyph_frames(frames: np.ndarray, spans: list) -> np.ndarray:
    """bool [T]: the frames that differ from a glyph-free frame by more than the frame noise."""
    times = np.arange(len(frames)) / letters.FPS
    off = np.ones(len(frames), dtype=bool)
    for start, end in spans:
        off &= ~((times >= start - 0.5 / letters.FPS) & (times < end + 0.5 / letters.FPS))
    empty = frames[np.flatnonzero(off)[0]].astype(np.int16)
    change = np.abs(frames.astype(np.int16) - empty).mean(axis=(1, 2, 3))
    return change > 2 * np.median(change[off])


def frames_within(spans: list, count: int) -> np.ndarray:
    """bool [count]: the frames whose time falls in one of the spans."""
    times = np.arange(count) / letters.FPS
    return np.any([(times >= start) & (times < end) for start, end in spans], axis=0)


def test_the_glyph_comes_with_each_utterance_and_stays_the_same_time_whatever_its_length(tmp_path):
    root = fake_klettres(tmp_path)
    found = letters.find_recordings(root)
    recording, longer = found[2], found[20]  # tones of 0.22 s and 0.40 s
    frames, audio, truth = letters.render(recording, 0, letters.fonts())
    assert frames.shape == (round(letters.VIDEO_SECONDS * letters.FPS), letters.HEIGHT, letters.WIDTH, 3)
    spans, shown = truth["speech"], truth["glyph"]
    assert len(spans) == len(shown) == letters.PLAYS
    assert all(end - start == pytest.approx(0.22, abs=0.01) for start, end in spans)  # silent ends trimmed
    middle = (letters.VIDEO_SECONDS - 1.0) / 2  # the centre clip of 1 s holds the middle utterance
    assert middle <= spans[letters.PLAYS // 2][0] and spans[letters.PLAYS // 2][1] <= middle + 1.0
    # the glyph: from the utterance's start for GLYPH_SECONDS, and on screen exactly then
    for (start, end), (on, off) in zip(spans, shown):
        assert on == start and off - on == pytest.approx(letters.GLYPH_SECONDS)
    assert np.array_equal(glyph_frames(frames, shown), frames_within(shown, len(frames)))
    # a recording almost twice as long: the same time on screen (12 or 13 frames of 25 fps, as the
    # span falls on the frame grid), so the video does not tell the two apart
    long_frames, _, long_truth = letters.render(longer, 0, letters.fonts())
    assert long_truth["speech"][0][1] - long_truth["speech"][0][0] == pytest.approx(0.40, abs=0.01)
    long_shown = glyph_frames(long_frames, long_truth["glyph"])
    assert np.array_equal(long_shown, frames_within(long_truth["glyph"], len(long_frames)))
    for on_screen in (glyph_frames(frames, shown), long_shown):
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], on_screen.astype(int), [0]]))))[::2]
        assert len(runs) == letters.PLAYS and set(runs) <= {12, 13}
    # the tone sits in the audio at the speech spans, over a noise floor 30 dB down
    loud = np.abs(audio) > 0.1
    heard = np.zeros(len(audio), dtype=bool)
    for start, end in spans:
        assert loud[int(start * RATE) + 50:int(end * RATE) - 50].mean() > 0.5
        heard[int(start * RATE) - 50:int(end * RATE) + 50] = True
    assert not loud[~heard].any()
    other, _, other_truth = letters.render(recording, 1, letters.fonts())
    assert other_truth["speech"] != spans and not np.array_equal(other, frames)


def test_where_an_utterance_starts_does_not_depend_on_the_recording():
    """The start within its slot is the only timing the video shows: drawn alike for a short and a long
    recording, and early enough that the glyph ends inside its slot."""
    slot = letters.VIDEO_SECONDS / letters.PLAYS
    short = letters.utterance_spans(0.2, np.random.default_rng(5))
    long = letters.utterance_spans(1.5, np.random.default_rng(5))
    assert [start for start, _ in short] == [start for start, _ in long]
    for k, (start, end) in enumerate(long):
        assert slot * k <= start and start + letters.GLYPH_SECONDS <= slot * (k + 1) + 1e-9
        assert end == pytest.approx(min(start + 1.5, letters.VIDEO_SECONDS))
    starts = np.array([letters.utterance_spans(0.3, np.random.default_rng(seed))[2][0] for seed in range(200)])
    assert starts.min() < 2 * slot + 0.02 and starts.max() > 3 * slot - letters.GLYPH_SECONDS - 0.02  # the whole range


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The number of unique classes")  # 2 files per letter in the probe
def test_bench_learn_runs_end_to_end_and_reports_the_targets(tmp_path, capsys):
    from avssl.cli import main

    work = tmp_path / "work"
    fake_klettres(work / "data")
    code = main(["bench", "learn", "--methods", "av-nce", "--steps", "2", "--work", str(work), "--workers", "0",
                 "--supervised-steps", "2", "--seeds", "0,3", "--out", str(tmp_path / "learn.json")])
    assert code == 0
    result = json.loads((tmp_path / "learn.json").read_text())
    run = result["methods"]["av-nce"]
    for side in ("pretrained", "random"):
        assert run[side]["n_queries"] == 52  # the test renders: 26 letters x 2 voices
        assert 1 <= run[side]["median_rank"] <= 52 and 0 <= run[side]["video_probe_top1"] <= 1
        # the scores are the means of the two seeds' own
        seeds = run["by_seed"]
        assert run[side]["recall@5"] == pytest.approx((seeds["0"][side]["recall@5"] + seeds["3"][side]["recall@5"]) / 2)
        # beside them: letters among the other renders only, and the own render found first
        assert 0 <= run[side]["other_renders_recall@5"] <= 1 and 1 <= run[side]["other_renders_median_rank"] <= 51
        assert 0 <= run[side]["own_render_recall@1"] <= 1
    assert set(run["targets"]) == {"median_rank", "recall@5", "video_probe_points"}
    # one run per seed, each with its own seed; each seed's random init is that seed's untrained network
    runs = work / "runs" / f"letters-v{letters.FORMAT_VERSION}"  # runs of earlier renders are not reused
    assert (runs / "av-nce-2" / "checkpoints" / "last.ckpt").is_file()
    assert "seed: 3" in (runs / "av-nce-2-seed3" / "config.yaml").read_text()
    video = [np.load(runs / folder / "features-random" / "test_backbone.npz")["video"]
             for folder in ("av-nce-2", "av-nce-2-seed3")]
    assert video[0].shape == video[1].shape and not np.allclose(video[0], video[1])
    table = (work / "learn.md").read_text()
    assert "| av-nce |" in table and "means over seeds 0, 3" in table and "own render left out" in table
    # the figures say which renders they were measured on (format 3's glyph timing named the recording)
    assert result["letters_format"] == letters.FORMAT_VERSION
    assert f"renders of format {letters.FORMAT_VERSION}" in table
    # the supervised reference: trained with the labels on the train renders, tested on the 52 test renders
    supervised = result["supervised_video"]
    assert supervised["steps"] == 2 and supervised["n_test"] == 52 and 0 <= supervised["test_top1"] <= 1
    assert supervised["chance"] == pytest.approx(1 / 26)
    assert (runs / "supervised-video-2" / "split1" / "checkpoints" / "last.ckpt").is_file()
    assert f"test top-1 {supervised['test_top1']:.3f} (chance 0.038)" in table


@pytest.mark.skipif(os.path.isdir("/usr/share/klettres"), reason="klettres-data is installed on this machine")
def test_without_the_recordings_the_benchmark_says_why(tmp_path, monkeypatch, capsys):
    from avssl.cli import main

    monkeypatch.setattr(letters.shutil, "which", lambda name: None)  # no apt-get, no dpkg
    code = main(["bench", "learn", "--methods", "av-nce", "--work", str(tmp_path)])
    assert code == 2
    assert "klettres-data is not installed and apt-get / dpkg are not available" in capsys.readouterr().err


def test_more_training_renders_add_views_and_keep_the_test_render(tmp_path, monkeypatch):
    root = fake_klettres(tmp_path)
    subset = [r for r in letters.find_recordings(root) if r.letter in "AB"]  # 2 letters x 2 voices
    monkeypatch.setattr(letters, "find_recordings", lambda _: subset)
    one = letters.build_letters(str(tmp_path), workers=0)
    folder = os.path.dirname(one["train"])
    first = {name: os.path.getmtime(os.path.join(folder, name)) for name in os.listdir(folder) if name.endswith(".mp4")}
    assert sorted(first) == sorted(f"r{k}_{r.voice}_{r.letter}.mp4" for k in (0, 1) for r in subset)
    three = letters.build_letters(str(tmp_path), workers=0, train_renders=3)
    from avssl.data.manifest import Manifest

    def rows(path):
        return sorted((os.path.basename(r.path)[:2], r.label, r.group, r.split) for r in Manifest.load(path))

    assert three["test"] == one["test"] and rows(three["test"]) == [("r1", r.letter, r.voice, "test") for r in
                                                                    sorted(subset, key=lambda r: r.letter)]
    assert rows(one["train"]) == [("r0", r.letter, r.voice, "train") for r in sorted(subset, key=lambda r: r.letter)]
    assert rows(three["train"]) == sorted((f"r{k}", r.letter, r.voice, "train") for k in (0, 2, 3) for r in subset)
    # renders 0 and 1 were kept, not encoded again; renders 2 and 3 differ from render 0
    assert all(os.path.getmtime(os.path.join(folder, name)) == t for name, t in first.items())
    r0, r2 = (letters.render(subset[0], k, letters.fonts())[2] for k in (0, 2))
    assert r0["speech"] != r2["speech"]
    with pytest.raises(UsageError, match="--train-renders must be at least 1"):
        letters.build_letters(str(tmp_path), workers=0, train_renders=0)


def test_the_probe_keeps_the_renders_of_a_recording_in_one_group():
    from avssl.bench.learn import recording_groups

    letter = np.array(["A", "B", "A", "B", "A"])
    voice = np.array(["en", "en", "en", "fr", "fr"])
    assert recording_groups(letter, voice).tolist() == [0, 1, 0, 2, 3]
    assert recording_groups(letter[:2], voice[:2]).tolist() == [0, 1]  # one render each: a group per file


def test_a_bad_render_count_is_named_before_anything_is_fetched(tmp_path, monkeypatch, capsys):
    from avssl.cli import main

    def no_fetch(_):
        raise AssertionError("fetched the recordings for a call that cannot run")

    monkeypatch.setattr(letters, "fetch_klettres", no_fetch)
    assert main(["bench", "learn", "--train-renders", "0", "--work", str(tmp_path)]) == 2
    assert "--train-renders must be at least 1, got 0" in capsys.readouterr().err


def test_seeds_are_averaged_before_the_targets_are_judged():
    from avssl.bench.learn import over_seeds, parse_seeds

    def scores(median, recall5, video):
        return {"median_rank": median, "recall@1": 0.1, "recall@5": recall5, "n_queries": 52,
                "video_probe_top1": video, "audio_probe_top1": 0.5}

    def run(pretrained, random):
        from avssl.bench.learn import targets_met
        return {"train_seconds": 10.0, "pretrained": pretrained, "random": random,
                "targets": targets_met(pretrained, random)}

    # seed 1 meets the median rank target (4 <= 10 / 2), seed 2 does not (10 vs 10): the means (7 vs 10) do not
    runs = {1: run(scores(4, 0.4, 0.2), scores(10, 0.2, 0.05)), 2: run(scores(10, 0.4, 0.2), scores(10, 0.2, 0.05))}
    out = over_seeds(runs)
    assert out["pretrained"]["median_rank"] == 7 and out["random"]["median_rank"] == 10
    assert [r["targets"]["median_rank"] for r in out["by_seed"].values()] == [True, False]
    assert out["targets"] == {"median_rank": False, "recall@5": True, "video_probe_points": True}
    assert out["train_seconds"] == 20.0
    assert parse_seeds("0, 2") == [0, 2]
    for bad in ("", "1,1", "a"):
        with pytest.raises(UsageError, match="--seeds"):
            parse_seeds(bad)
