"""avssl.evaluate.run_plots: every metrics.csv column lands in one family figure, with chance lines."""

from __future__ import annotations

from avssl.evaluate.run_plots import group_columns, plot_run

COLUMNS = ["step", "epoch", "train/loss", "train/video_speed", "train/acc_video_speed", "train/sync_accuracy_easy",
           "probe/knn_top1", "curriculum/hard_share", "train/queue_positives", "train/within_movie_share",
           "train/clips_per_s", "data/failures", "train/something_new"]


def test_columns_are_grouped_by_name_into_families():
    families = group_columns(COLUMNS, terms=("train/video_speed",))
    assert families == {"loss": ["train/loss", "train/video_speed"],
                        "probe": ["probe/knn_top1"],
                        "accuracy": ["train/acc_video_speed", "train/sync_accuracy_easy"],
                        "curriculum": ["curriculum/hard_share"], "queue": ["train/queue_positives"],
                        "batch": ["train/within_movie_share"], "throughput": ["train/clips_per_s"],
                        "data": ["data/failures"], "other": ["train/something_new"]}


def test_plot_run_writes_one_titled_figure_per_family(tmp_path, monkeypatch):
    import matplotlib.axes

    csv = tmp_path / "metrics.csv"
    rows = [",".join(COLUMNS)] + [",".join([str(s), "0"] + [f"{0.5 + 0.01 * s:.2f}"] * (len(COLUMNS) - 2))
                                  for s in range(25)]
    csv.write_text("\n".join(rows) + "\n")
    titles, chance_lines = [], []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda self, t, **k: titles.append(t))
    original = matplotlib.axes.Axes.axhline
    monkeypatch.setattr(matplotlib.axes.Axes, "axhline",
                        lambda self, y=0, **k: chance_lines.append(y) or original(self, y, **k))
    figures = plot_run(str(csv), str(tmp_path), "{family}_m.png", chance={"train/sync_accuracy_easy": 0.5})
    assert [f.name for f, _ in figures] == ["loss", "probe", "accuracy", "curriculum", "queue", "batch",
                                            "throughput", "data", "other"]
    assert all(open(path, "rb").read(4) == b"\x89PNG" for _, path in figures)
    assert (tmp_path / "probe_m.png").exists() and "learning curve" in titles[1]
    assert chance_lines == [0.5]
    assert plot_run(str(tmp_path / "missing.csv"), str(tmp_path)) == []
