"""Every `avssl ...` command line quoted in README.md and docs/*.md runs, on the tiny demo world.

The lines come from the Markdown code blocks (fenced, but not python/yaml/json, and indented), with
`\\` line continuations joined and `# comments` dropped. They run in the order of the documents, in
one sandbox folder laid out with the names the docs use (UCF101/, ucf1.csv, runs/avts-tiny, ...)
pointing at the fixture's tiny world, manifests, checkpoint and features files, so that a line that
reads what an earlier line wrote reads that. TOKENS replaces placeholders that are not paths;
SPEED appends options per verb that keep a run small (a later option or override wins).

A line that cannot run here is listed in SKIP with the reason. Any other line must exit 0: a
command the docs quote that neither runs nor is listed fails the test, so the docs cannot drift
from the code. A SKIP entry no document quotes any more fails too.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from avssl import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/api.md", "docs/benchmarks.md", "docs/evaluation.md", "docs/training.md"]
NOT_COMMANDS = ("python", "py", "yaml", "json", "toml", "csv", "text")  # fenced blocks of other content
GPU = "needs a CUDA device"
LETTERS_V5 = "renders 2,574 letter videos and pretrains for minutes (tests/bench/test_bench_learn.py runs it small)"
DDP = "several processes or GPUs; 2-process CPU DDP is tested in tests/train/test_ddp_cpu.py"

# command line as quoted (tokens joined by one space) -> why the test does not run it
SKIP = {
    "avssl pretrain --config configs/avts.yaml --data manifest.csv --out runs/avts trainer.devices=4 "
    "trainer.strategy=ddp data.num_workers=8": DDP,
    "avssl pretrain --config avts --data kinetics.csv --out runs/avts trainer.devices=4 trainer.strategy=ddp "
    "trainer.sync_batchnorm=true": DDP,
    "avssl pretrain --config avts-tiny --data demo/train.csv --out runs/ddp-cpu trainer.accelerator=cpu "
    "trainer.devices=2 trainer.strategy=ddp data.num_workers=1": DDP,
    "avssl pretrain --config avts --data kinetics.csv --out runs/avts trainer.accelerator=gpu trainer.devices=1": GPU,
    "torchrun --nnodes 2 --nproc-per-node 4 --node-rank $NODE_RANK --master-addr $MASTER_HOST --master-port 29500 "
    "-m avssl pretrain --config avts --data /shared/kinetics.csv --out /shared/runs/avts trainer.devices=4 "
    "trainer.num_nodes=2 trainer.strategy=ddp": "two nodes of 4 GPUs (torchrun)",
    "srun --kill-on-bad-exit=1 python -m avssl pretrain --config avts --data /shared/kinetics.csv --out "
    "/shared/runs/avts trainer.devices=4 trainer.num_nodes=2 trainer.strategy=ddp data.num_workers=6":
        "two nodes of 4 GPUs (SLURM)",
    "avssl pretrain --config CONFIG --data MANIFEST.csv --out RUN_DIR [key=value ...] [--strict] "
    "[--allow-data-change]": "a synopsis with [optional] parts, not a command",
    "avssl export runs/avts --out export/avts [--data train.csv] [--torchscript] [--onnx]":
        "a synopsis with [optional] parts, not a command",
    "avssl eval compare pretrained:E=R_pre_E.json random:E=R_rnd_E.json ...":
        "a template (E = each evaluation, ... = more of them)",
    "avssl probe HMDB51/ --dataset hmdb51 --split 1 --out hmdb51_split1.csv":
        "needs the HMDB51 layout (the adapter is tested on a fabricated one in tests/data/test_adapters.py)",
    "avssl probe Kinetics/ --dataset kinetics-sounds --class-list classes.txt --out ks.csv":
        "needs the Kinetics layout (the adapter is tested on a fabricated one in tests/data/test_adapters.py)",
    "avssl probe VGGSound/ --dataset vggsound --out vggsound.csv":
        "needs the VGGSound layout (the adapter is tested on a fabricated one in tests/data/test_adapters.py)",
    "avssl import-weights r2plus1d_18-91a641e6.pth --layout torchvision --out r2plus1d_18_k400.pt":
        "needs the published weights file (a download)",
    "avssl import-weights gdt_K400.pth --layout gdt --out gdt_video.pt": "needs the published weights file (a download)",
    "avssl import-weights AVID-CMA_Kinetics_InstX-N1024-PosW-N64-Top32_checkpoint.pth.tar --layout avid-cma --out "
    "avid.pt": "needs the published weights file (a download)",
    "avssl bench train --model r2plus1d_18 --device cuda --batch 32 --steps 20": GPU,
    "avssl bench train --model r2plus1d_18 --device cuda --batch 32 --steps 20 --precision bf16 --channels-last": GPU,
    "avssl bench train --model r2plus1d_18 --device cuda --batch 32 --steps 20 --precision bf16 --channels-last "
    "--compile": GPU,
    "avssl demo --quick --method all --out da": "minutes on the default world (tests/cli/test_demo_quick.py runs it)",
    "avssl bench loader --data demo --with-cache --batches 8 --repeats 2": "generates and times benchmark media: minutes",
    "avssl bench loader --data demo 720p --with-cache --batches 8 --repeats 1":
        "generates and times 720p benchmark media: minutes",
    "avssl bench loader --data 720p 30min --with-cache --batches 6 --repeats 1": "generates a 30-minute file",
    "avssl bench loader --data demo --recipes temporal-av --memory --samples 5000": "5000 samples: minutes",
    "avssl bench learn --methods av-nce,avts --steps 1000 --work /tmp/learn --out l2.json":
        "unpacks Debian's klettres-data and pretrains for minutes (tests/bench/test_bench_learn.py runs it small)",
    "avssl bench learn --methods avts --steps 2000 --work /tmp/learn --supervised-steps 2000 --out l3.json":
        "unpacks Debian's klettres-data and trains for minutes (tests/bench/test_bench_learn.py runs it small)",
    "avssl bench learn --methods avts,av-nce --steps 2000 --train-renders 8 --work /tmp/learn --out l8.json":
        "renders 2,288 letter videos and pretrains for minutes (tests/bench/test_bench_learn.py renders 3 per pair)",
    "avssl bench learn --methods avts --steps 2000 --train-renders 8 --seeds 0,1 --work /tmp/learn --out l8s.json":
        "pretrains twice for minutes (tests/bench/test_bench_learn.py runs two seeds small)",
    **{f"avssl bench learn --methods {method} --steps 2000 --train-renders 8 --seeds 0 --supervised-steps 0 "
       f"--work /tmp/learn --out l5-{name}.json":
       LETTERS_V5
       for method, name in (("avts", "avts"), ("av-nce", "avnce"), ("avcl", "avcl"))},
    **{f"avssl bench learn --methods avts --steps 2000 --train-renders 8 --seeds {seeds} --supervised-steps 0 "
       f"--workers 1 --work /tmp/learn2 --out l5-avts-mc3{suffix}.json":
       LETTERS_V5
       for seeds, suffix in (("0", ""), ("0,1", "-s01"))},
    **{f"avssl bench learn --methods {method} --steps 2000 --train-renders 8 --seeds 0 --supervised-steps 0 "
       f"--workers 1 --work /tmp/learn2 --out l5-{name}.json":
       LETTERS_V5
       for method, name in (("temporal-av", "ta"), ("movie-nce", "mn"))},
    "avssl finetune --checkpoint random:av-nce-tiny --data letters.csv --out ft32 model=video max_steps=2000 "
    "batch_size=16 lr=0.002 dropout=0": "needs the letters world that `avssl bench learn` renders (apt, minutes)",
    "avssl finetune --checkpoint random:av-nce-tiny --data letters.csv --out ft64 model=video max_steps=1000 "
    "batch_size=16 lr=0.002 dropout=0 data.video_augment.size=64 data.video_augment.crop_scale=[0.8,1.0] "
    "data.video_augment.jitter_p=0 data.video_augment.grayscale_p=0 data.video_augment.flip_p=0":
        "needs the letters world that `avssl bench learn` renders (apt, minutes)",
    "avssl embed long1800.mp4 --model random:avts-tiny --out e1800.npz --modality both --space joint":
        "a 30-minute file made by the python line before it",
    "avssl pretrain --config avts-tiny --data demo/train.csv --out runs/avts-tiny-tb trainer.logger=[csv,tensorboard]":
        "needs the optional tensorboard package (tests/train/test_loggers.py checks the missing-package error)",
}
# placeholders that are not sandbox paths
TOKENS = {
    "CKPT": "runs/avts-tiny/checkpoints/last.ckpt",
    "random:avts": "random:avts-tiny",  # the paper-scale network is minutes per file on a CPU
    "/data/my_videos": "clips",
    "RUN/checkpoints/last.ckpt": "runs/avts-tiny/checkpoints/last.ckpt",
    "talk.mp4": "clips/clip_0000.mp4",
    "clip.mp4": "clips/clip_0001.mp4",
}
# appended per verb (argparse keeps the last value of an option; the last key=value override wins)
TRAIN = ("trainer.max_steps=2", "data.batch_size=2", "data.num_workers=0", "trainer.checkpoint_every_n_steps=1")
SPEED = {
    ("pretrain",): TRAIN,
    ("extract",): ("--clips-per-video", "1", "--workers", "0"),
    ("make-demo-data",): ("--scale", "tiny"),
    ("probe",): ("--workers", "2"),
    ("eval", "fingerprint"): ("--limit", "3", "--transforms", "crop,blur"),
    ("bench", "train"): ("--frames", "4", "--size", "32", "--batch", "2", "--steps", "1", "--warmup", "0"),
    ("bench", "decode"): ("--files", "320x240_10s", "--clips", "2", "--backends", "pyav"),
    ("bench", "sync-localize"): ("--steps", "2", "--clips", "2", "--shifts=0.4", "--maps=raw,occlusion-contrast"),
    ("finetune",): ("max_steps=2", "batch_size=2", "clips_per_video=1", "num_workers=0"),
}
PYTHON_M = ("python", "python3", "torchrun", "srun")


def code_lines(text: str):
    """(line number, line) of the Markdown's code: fenced blocks (not NOT_COMMANDS) and indented blocks."""
    fence, previous_blank, indented = None, True, False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = (stripped[3:].strip() or "shell") if fence is None else None
            previous_blank, indented = True, False
            continue
        if fence is not None:
            if fence not in NOT_COMMANDS:
                yield number, line
            continue
        if line.startswith("    ") and (previous_blank or indented):
            indented = True
            yield number, line[4:]
        elif stripped:
            indented = False
        previous_blank = not stripped


def doc_commands(path: Path) -> list[tuple[int, str]]:
    """(first line number, command as tokens joined by spaces) of every avssl command line of a document."""
    out, pending, start = [], "", 0
    for number, line in code_lines(path.read_text(encoding="utf-8")):
        text = f"{pending} {line.strip()}" if pending else line.strip()
        start = start if pending else number
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        pending = ""
        try:
            tokens = shlex.split(text, comments=True)
        except ValueError:
            continue
        while tokens and (re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]) or tokens[0] in ("time", "$")):
            tokens = tokens[1:]
        if tokens and (tokens[0] == "avssl" or (tokens[0] in PYTHON_M and "avssl" in tokens)):
            out.append((start, " ".join(tokens)))
    return out


def all_commands() -> list[tuple[str, int, str]]:
    docs = DOCS + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")
                         if str(p.relative_to(ROOT)) not in DOCS)
    return [(doc, number, command) for doc in docs for number, command in doc_commands(ROOT / doc)]


def argv_for(command: str) -> list[str]:
    """The argv of `avssl.cli.main` for a documented command: placeholders replaced, SPEED appended."""
    tokens = [TOKENS.get(t, t) for t in shlex.split(command)][1:]
    for verb, extra in SPEED.items():
        if tuple(tokens[:len(verb)]) == verb:
            tokens += list(extra)
    return tokens


def _pretrain_tiny(manifest: Path, run_dir: Path) -> None:
    from avssl.config.bundled import resolve_config_path
    from avssl.methods.configs import load_config
    from avssl.train.engine import pretrain

    pretrain(load_config(resolve_config_path("avts-tiny"), list(TRAIN)), str(manifest), str(run_dir))


def _fingerprint_file(path: Path) -> None:
    from avssl.evaluate.features import save_features

    rng = np.random.default_rng(0)
    refs = rng.normal(size=(6, 8))
    queries = np.vstack([refs + 0.05 * rng.normal(size=refs.shape), rng.normal(size=refs.shape)])
    save_features(path, path_column=[f"v{i}.mp4" for i in range(18)], label=[""] * 6 + ["blur"] * 6 + ["crop"] * 6,
                  split=["reference"] * 6 + ["query"] * 12, group=[f"r{i % 6}" for i in range(18)],
                  video=np.vstack([refs, queries]).astype(np.float32))


def _features(sandbox: Path, world: Path, ckpt: str) -> None:
    """Features files the docs read without writing them first: UCF-style splits 1-3, ESC-style audio,
    the joint space, a fingerprint file."""
    from avssl.demo.pipeline import ucf_split_features
    from avssl.evaluate.extract import extract_to_file
    from avssl.evaluate.features import save_features

    ucf = extract_to_file(ckpt, str(sandbox / "ucf1.csv"), str(sandbox / "ucf_split1.npz"), modality="both")
    for k, f in enumerate(ucf_split_features(ucf, str(world))[1:], start=2):
        save_features(sandbox / f"ucf_split{k}.npz", path_column=f.path, label=f.label, split=f.split, group=f.group,
                      video=f.video, audio=f.audio, model=f.model, space=f.space)
    extract_to_file(ckpt, str(sandbox / "esc50.csv"), str(sandbox / "esc50.npz"), modality="audio")
    extract_to_file(ckpt, str(sandbox / "ucf1.csv"), str(sandbox / "demo.npz"), modality="both", space="embedding")
    _fingerprint_file(sandbox / "vggsound_fp.npz")


@pytest.fixture(scope="module")
def sandbox(tiny_world, tmp_path_factory):
    """A folder with the docs' names: datasets, manifests, run dirs, features files."""
    from avssl.data.adapters import get_adapter
    from avssl.data.discovery import discover_media
    from avssl.data.probing import build_manifest, probe_paths

    box = tmp_path_factory.mktemp("docs_sandbox")
    world = Path(tiny_world)
    for name, target in {"UCF101": "ucf", "ESC-50": "esc", "movies": "movies", "clips": "clips",
                         "videos": "clips"}.items():
        shutil.copytree(world / target, box / name)
    (box / "configs").symlink_to(ROOT / "src" / "avssl" / "configs", target_is_directory=True)
    (box / "demo").mkdir()
    manifests = {"pretrain": (None, None), "ucf1": ("ucf101", 1), "ucf2": ("ucf101", 2), "ucf3": ("ucf101", 3),
                 "esc": ("esc50", None)}
    for name, (dataset, split) in manifests.items():
        if dataset is None:
            paths, labels = discover_media([str(world / "clips"), str(world / "movies")]), {}
        else:
            entries = get_adapter(dataset)(str(world / ("ucf" if dataset == "ucf101" else "esc")), split,
                                           class_list=None, name_template=None)
            paths, labels = [e.path for e in entries], {e.path: (e.label, e.split, e.group) for e in entries}
        build_manifest(paths, probe_paths(paths, workers=2, progress=False), labels).save(str(box / f"{name}.csv"))
    copies = {"pretrain": ["manifest.csv", "kinetics.csv", "train.csv", "demo/train.csv"],
              "ucf1": ["ucf101_split1.csv", "vggsound_test.csv", "demo/ucf_like_test.csv"], "esc": ["esc50.csv"]}
    for name, targets in copies.items():
        for target in targets:
            shutil.copy(box / f"{name}.csv", box / target)
    _pretrain_tiny(box / "manifest.csv", box / "runs" / "avts-tiny")
    for target in ("runs/avts", "runs/avts-localize", "run"):
        shutil.copytree(box / "runs" / "avts-tiny", box / target)
    _features(box, world, str(box / "runs" / "avts-tiny" / "checkpoints" / "last.ckpt"))
    return box


def run_command(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as stop:  # argparse: bad usage
        return stop.code if isinstance(stop.code, int) else 2


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_every_quoted_command_runs(doc, sandbox, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    failures = []
    for number, command in doc_commands(ROOT / doc):
        if command in SKIP:
            continue
        argv = argv_for(command)
        code = run_command(argv)
        out, err = capsys.readouterr()
        if code != 0:
            failures.append(f"{doc}:{number}: exit {code}: {command}\n  ran: avssl {' '.join(argv)}\n  "
                            + "\n  ".join((err or out).strip().splitlines()[-4:]))
    assert not failures, ("documented commands that fail (fix the docs or the code, or list the line in "
                          "SKIP with the reason):\n" + "\n".join(failures))


def test_docs_outside_the_list_have_no_command():
    """A new document's commands run too: add it to DOCS."""
    unlisted = [(doc, number, c) for doc, number, c in all_commands() if doc not in DOCS]
    assert not unlisted, f"add these documents to DOCS: {sorted({d for d, _, _ in unlisted})}"


def test_skip_table_lists_only_quoted_commands():
    quoted = {command for _, _, command in all_commands()}
    stale = [command for command in SKIP if command not in quoted]
    assert not stale, f"SKIP entries no document quotes any more (remove them): {stale}"


def test_extraction_joins_continuations_and_drops_comments(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("text `avssl inline` is not code\n\n    avssl probe a/ \\\n        --out m.csv   # note\n\n"
                   "```python\nimport avssl\n```\n\n```bash\nOMP_NUM_THREADS=1 time avssl eval linear x.npz\n"
                   "make test\n```\n\n    torchrun --nnodes 2 -m avssl pretrain --config avts\n")
    assert doc_commands(doc) == [(3, "avssl probe a/ --out m.csv"), (11, "avssl eval linear x.npz"),
                                 (15, "torchrun --nnodes 2 -m avssl pretrain --config avts")]
    assert argv_for("avssl extract --checkpoint CKPT --data u.csv --out o.npz --clips-per-video 3")[-4:] == \
        ["--clips-per-video", "1", "--workers", "0"]
    assert argv_for("avssl extract --checkpoint CKPT --data u.csv --out o.npz")[2] == TOKENS["CKPT"]


def test_gpu_lines_are_skipped_for_the_gpu_reason():
    assert all(reason == GPU for command, reason in SKIP.items() if "--device cuda" in command)


def inline_commands(path: Path) -> list[str]:
    """The `avssl ...` spans of a document's prose (synopses such as `avssl eval linear|knn ...`)."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [span for span in re.findall(r"`(avssl [^`]+)`", text)]


def _first_choice(parser):
    """The choices of the verb's first positional argument (its sub-command or kind), or None."""
    for action in parser._actions:
        if not action.option_strings and action.choices:
            return action.choices
    return None


def test_every_verb_and_subcommand_named_in_prose_exists():
    """`avssl bench train_methods` in a sentence is as wrong as in a code block."""
    wrong = []
    for doc in DOCS:
        for span in inline_commands(ROOT / doc):
            tokens = span.replace("\\|", "|").split()
            if len(tokens) < 2 or tokens[1].startswith("-") or tokens[1].isupper():
                continue
            if tokens[1] not in cli.VERBS:
                wrong.append(f"{doc}: `{span}`: no verb {tokens[1]!r}")
                continue
            parser = cli._build_parser(tokens[1])
            verb_parser = parser._subparsers._group_actions[0].choices[tokens[1]]
            choices = _first_choice(verb_parser)
            if choices is None or len(tokens) < 3 or not re.fullmatch(r"[a-z0-9_|-]+", tokens[2]):
                continue
            wrong += [f"{doc}: `{span}`: {tokens[1]} has no {name!r} (has {', '.join(choices)})"
                      for name in tokens[2].split("|") if name not in choices]
    assert not wrong, "\n".join(wrong)
