"""Run the whole pipeline on the synthetic demo world and show whether self-supervision helped.

Generates the demo world into OUT/world (kept and reused on the next run), probes it into manifests
(OUT/pretrain.csv: unlabeled clips and movies; OUT/ucf1.csv: UCF-style split 1; OUT/esc.csv:
ESC-style folds), pretrains each chosen method's CPU-scale config (METHOD-tiny) into OUT/runs/METHOD,
extracts features with the pretrained model and with the same architecture freshly initialised
(random:METHOD-tiny), and evaluates both: video linear probe (UCF-style splits 1-3), audio linear
probe (ESC-style folds), cross-modal retrieval in the joint embedding space (all UCF-style clips);
for avts also in-sync vs out-of-sync accuracy, for temporal-av the held-out accuracy of its
direction and order heads. Writes OUT/report.md (table of method vs random vs chance, training curves
of every logged metric family, embedding maps of pretrained beside random) and OUT/results.json
(with the provenance `avssl eval` gives its results: config, inputs with SHA-256, code version).

--seeds N: pretraining and evaluation once per training seed 0..N-1 (runs in OUT/runs/METHOD-seedS);
the table and results.json give the mean ± standard deviation over the seeds, with each seed's own
results under `per_seed`.

--quick: 300 pretraining steps, fewer clips per file at extraction (under 3 minutes for one method
on 2 CPU cores); without it: each method's tiny config's own steps (avts 2000, temporal-av 2000, the
others 600; avts alone about 7 minutes, under 10). --steps N: N for every method. Progress goes to
stderr.

examples:
  avssl demo --quick
  avssl demo --out demo --method avts
  avssl demo --out demo_all --method all
  avssl demo --quick --seeds 3 --out demo_seeds
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="avssl_demo", metavar="DIR",
                        help="folder for the world, runs, features and report (default avssl_demo)")
    parser.add_argument("--method", default="avts", metavar="NAME",
                        help="avts (default), avcl, movie-nce, temporal-av, or all")
    parser.add_argument("--quick", action="store_true", help="few steps, fewer clips per file (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps per method (default: 300 with --quick, else each method's tiny config's)")
    parser.add_argument("--workers", type=int, default=2, help="processes for generation, probing, loading (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the demo world (default 0)")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="training seeds 0..N-1 per method: mean and spread of every metric (default 1)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from avssl.cli.outputs import check_output
    from avssl.demo.pipeline import FULL, METHODS, QUICK, run_demo
    from avssl.errors import UsageError

    check_output(args.out, "--out", folder=True)

    methods = list(METHODS) if args.method == "all" else [args.method]
    plan = QUICK if args.quick else FULL
    if args.steps is not None:
        if args.steps <= 0:
            raise UsageError(f"--steps must be positive, got {args.steps}")
        plan = dataclasses.replace(plan, steps=args.steps)
    logging.getLogger("lightning.pytorch").propagate = False
    results = run_demo(args.out, methods, plan, workers=args.workers, seed=args.seed, seeds=args.seeds)
    for method, r in results["methods"].items():
        for row in r["comparison"]:
            if row["headline"]:
                spread = (lambda side: f" ± {row[side + '_std']:.3f}") if "n" in row else (lambda side: "")
                print(f"{method} {row['evaluation']} {row['metric']}: pretrained {row['pretrained']:.3f}"
                      f"{spread('pretrained')} random {row['random']:.3f}{spread('random')} chance {row['chance']:.3f}")
    print(f"report: {args.out}/report.md")
    return 0
