"""The one-line help, the description and the examples of each `avssl eval TASK` (shown by
`avssl eval TASK --help`), kept apart from the argument wiring of avssl.cli.evaluate."""

from __future__ import annotations

PROTOCOL = """\
Protocol: `splits` = one file per official split with split train/test (UCF101, HMDB51: give the 3
split files, the result is their mean); `folds` = one file whose split is the fold number (ESC-50:
train on 4 folds, test on the 5th, mean over the 5); `auto` (default) infers it. The features must
be labelled, with splits or folds (a manifest of `avssl probe --dataset ucf101|hmdb51|esc50 ...`)."""

# task -> (one-line help, description with examples)
TASKS: dict[str, tuple[str, str]] = {
    "linear": ("linear probe: top1, top5", f"""\
Linear probe on frozen features: standardised multinomial logistic regression, C chosen by grouped
cross-validation on the training side (no test data), top1 and top5 on the test side.

{PROTOCOL}

examples:
  avssl eval linear ucf_split1.npz ucf_split2.npz ucf_split3.npz --out linear.json --report report/
  avssl eval linear esc50.npz --modality audio --seeds 0,1,2"""),
    "knn": ("cosine kNN: top1, top5", f"""\
k-nearest-neighbour classification on frozen features: cosine similarity to the training rows,
votes weighted by exp(cos / temperature) (or one each with --weighting majority), top1 and top5.

{PROTOCOL}

examples:
  avssl eval knn esc50.npz --modality audio --k 20 --weighting majority
  avssl eval knn ucf_split1.npz ucf_split2.npz ucf_split3.npz --k 5 --out knn.json"""),
    "retrieval": ("recall@k (class or cross-modal)", f"""\
Retrieval by cosine similarity. Class retrieval (default): each test clip queries the training
clips, a hit is a clip of the same class: recall@k. Cross-modal (--cross-modal): in each file every
clip's audio queries all clips' video (audio -> video) and back (video -> audio), a hit is the same
path (--match path), source group or class; recall@k and the median rank, per direction and their
mean. Cross-modal retrieval compares audio with video, so it needs features of one joint space:
extract them with `avssl extract ... --modality both --space embedding` (backbone features, the
default of extract, are refused: their audio and video spaces are unrelated and recall is chance).

{PROTOCOL}

examples:
  avssl eval retrieval ucf_split1.npz --ks 1,5,10,20,50
  avssl eval retrieval joint.npz --cross-modal --subset test --report report/"""),
    "fingerprint-metric": ("micro AP and recall@1 of copy detection", """\
Copy-detection metrics of a fingerprint features file: rows with split `reference` (id = group, or
the path) and rows with split `query` (group = the id of its reference, empty for none; label = its
transform). map = micro average precision over all query-reference pairs (VSC 2022), recall@1, and
both per transform.

examples:
  avssl eval fingerprint-metric vggsound_fp.npz --candidates-per-query 25
  avssl eval fingerprint-metric fp.npz --out fp_metrics.json --report fp_report/"""),
    "fingerprint": ("fingerprinting benchmark from a checkpoint and a manifest", """\
The fingerprinting benchmark end to end from a model and a manifest: decode a reference window of
each file, transform it into queries (crop, resize, blur, brightness, re-encode, speed, audio noise,
audio resample), embed references and queries (video + audio backbone features, each L2-normalised,
concatenated, L2-normalised), then map and recall@1 overall and per transform. A progress bar on a
terminal (else a log line every 30 s). --device auto (default): CUDA when available, else MPS, else CPU.

examples:
  avssl eval fingerprint --checkpoint run/checkpoints/last.ckpt --data vggsound_test.csv --limit 500
  avssl eval fingerprint --checkpoint random:avts-tiny --data demo.csv --transforms crop,blur,speed"""),
    "compare": ("results side by side: MODEL:EVALUATION=RESULT.json ...", """\
Results of `avssl eval ... --out RESULT.json` side by side as a Markdown table: one column per MODEL,
one row per (EVALUATION, metric), then the difference of each model to the baseline model
(--baseline, default `random`: pretrained - random) and the metric's chance level (k/C for top-k,
k/N and (N + 1)/2 for cross-modal recall and median rank). Several files for one MODEL:EVALUATION are
seeds of one cell: mean ± population std (n=files); one file of a `--seeds` run shows its own mean
± std (n=seeds).

examples:
  avssl eval compare pretrained:ucf-linear=p.json random:ucf-linear=r.json --out comparison.md
  avssl eval compare pretrained:esc=p0.json pretrained:esc=p1.json random:esc=r0.json random:esc=r1.json"""),
}
