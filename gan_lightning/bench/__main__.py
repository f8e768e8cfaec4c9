"""``python -m gan_lightning.bench``: the framework's training step against a hand-written PyTorch loop.

For each case both loops train the identical model (same architecture and initial weights), objective,
optimizers, batch size and in-memory data, in this process, alternating framework and plain rounds
after a warm-up in each, so that thread settings, caches and machine load treat both alike. Steps/s
are timed over the steps after the warm-up only; the ratio framework/plain is the median over rounds of
each round's own ratio, whose two loops ran back to back. Also measured on request: the plain loop's step run
inside the framework's trainer, which splits the difference between the loops into Lightning's loop and
the module's step; the cost of an FID evaluation; how step time grows with batch size and model width; what a
user would write instead (peers); the wall time of a multirun over seeds with each launcher (sweeps); and the
step's time with each augmentation (augment=diffaug, ada) against none (augment); and a search's trial reporting
to its study against the same run outside a search (search).

    python -m gan_lightning.bench                          # every case, 5 rounds, results in bench.json
    python -m gan_lightning.bench split=true fid=true scaling=true out=bench.json
    python -m gan_lightning.bench cases=dcgan_cifar_size trainer.precision=bf16-mixed   # both loops in bf16
    python -m gan_lightning.bench cases= sweeps=true       # only the launchers
    python -m gan_lightning.bench cases= vectorized=true   # seeds trained side by side
    python -m gan_lightning.bench cases= augment=true      # what each augmentation adds to a step
    python -m gan_lightning.bench cases= search=true       # what reporting to a search's study adds to a step
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

from gan_lightning.bench.cases import CASES, LAUNCHERS, MEMBERS, VECTORIZED_CASES
from gan_lightning.commands import Command, Setting, boolean, main_guard, whole_number
from gan_lightning.errors import UserError, require_choice

COMMAND = Command(
    "gan_lightning.bench",
    __doc__.strip(),
    [
        Setting("cases", "comma-separated: " + ", ".join(CASES), ",".join(CASES)),
        Setting("rounds", "alternating rounds of both loops", 5, whole_number(1)),
        Setting("warmup", "untimed steps at the start of every round", 30, whole_number(0)),
        Setting("steps", "timed steps per round", 150, whole_number(1)),
        Setting("threads", "torch.set_num_threads for both loops", 1, whole_number(1)),
        Setting("fid", "also time an FID evaluation of 10 000 samples", False, boolean),
        Setting("scaling", "also time batch sizes 32-512 and widths x1, x2, x4", False, boolean),
        Setting(
            "split",
            "also time the plain step as the framework's training step: splits the difference into "
            "Lightning's loop and the module's step",
            False,
            boolean,
        ),  # fmt: skip
        Setting(
            "peers",
            "also time what a user would write instead: Lightning's GAN tutorial and PyTorch's DCGAN example "
            "(gan_lightning/bench/peers.py)",
            False,
            boolean,
        ),  # fmt: skip
        Setting(
            "sweeps", "also time multiruns over seeds with the " + ", ".join(LAUNCHERS) + " launchers", False, boolean
        ),
        Setting(
            "sweep_cases", "comma-separated cases of those multiruns: " + ", ".join(VECTORIZED_CASES), "mlp_ring8_small"
        ),
        Setting("sweep_jobs", "comma-separated numbers of jobs (seeds) of those multiruns", "4"),
        Setting("sweep_steps", "training steps of each of their jobs", 2000, whole_number(1)),
        Setting(
            "vectorized",
            "also time "
            + ", ".join(map(str, MEMBERS))
            + " seeds trained side by side against one separate run: "
            + ", ".join(VECTORIZED_CASES),
            False,
            boolean,
        ),  # fmt: skip
        Setting(
            "augment",
            "also time the dcgan_fashion_mnist step with each augmentation (DiffAugment's policies, ADA at p = 0, "
            "0.2, 1) against none",
            False,
            boolean,
        ),  # fmt: skip
        Setting(
            "search",
            "also time the mlp_ring8_small step of a search's trial, which reports its metric to a study every 50 steps, "
            "against the same run outside a search",
            False,
            boolean,
        ),  # fmt: skip
        Setting("out", "the results file", "bench.json"),
        Setting("workdir", "where the framework's run files go", "bench_runs"),
    ],
    overrides="config overrides for every case and both loops: trainer.precision=bf16-mixed, trainer.compile=true, "
    "trainer.channels_last=true",
)


def main(argv=None) -> int:
    args, overrides = COMMAND.parse(sys.argv[1:] if argv is None else argv)
    args = SimpleNamespace(**args, overrides=overrides)
    cases = [name for name in args.cases.split(",") if name]  # cases= (none): only the extra measurements
    for name in cases:
        require_choice("cases", name, CASES)
    sweep_cases = [name for name in args.sweep_cases.split(",") if name] if args.sweeps else []
    for name in sweep_cases:
        require_choice("sweep_cases", name, VECTORIZED_CASES)
    sweep_jobs = [int(jobs) for jobs in str(args.sweep_jobs).split(",") if jobs.strip().isdigit() and int(jobs) > 0]
    if len(sweep_jobs) != len(str(args.sweep_jobs).split(",")):
        raise UserError(
            f"sweep_jobs={args.sweep_jobs}: allowed: whole numbers of at least 1, comma-separated (4 or 1,4,16)"
        )
    import torch

    from gan_lightning.adapter.runtime import restore_cuda_check
    from gan_lightning.bench.loops import (
        augment_cost,
        case_config,
        compare,
        fid_cost,
        scaling,
        search_cost,
        sweep_wall_times,
        vectorized_speed,
    )
    from gan_lightning.bench.peers import PLAIN_AUTOCAST
    from gan_lightning.runs.summary import machine

    for name in cases:  # composes and validates every case with the overrides before any is timed
        require_choice("trainer.precision", case_config(name, args.overrides).trainer.precision, PLAIN_AUTOCAST)
    torch.set_num_threads(args.threads)
    restore_cuda_check()  # the plain loop runs as it would in a process that never imported Lightning
    from gan_lightning.runs.lifecycle import quiet_dependencies

    quiet_dependencies()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    folder = Path(args.workdir)
    results = {
        "machine": machine(),
        "settings": {"rounds": args.rounds, "warmup": args.warmup, "steps": args.steps, "overrides": args.overrides},
        "cases": [],
    }
    if cases:
        print(f"{'case':22} {'framework steps/s':>22} {'plain steps/s':>22} {'framework/plain per round':>26}")
    failed = []
    for name in cases:
        try:
            summary = compare(
                name, args.rounds, args.warmup, args.steps, folder, args.overrides, split=args.split, peers=args.peers
            ).summary()
        except UserError as error:  # this case cannot run here: the others' results are kept
            print(f"{name:22} not timed: {error}", flush=True)
            results["cases"].append({"case": name, "error": str(error)})
            failed.append(name)
            continue
        results["cases"].append(summary)
        Path(args.out).write_text(json.dumps(results, indent=2))  # each case's result kept as soon as it is measured
        f, p = summary["framework_steps_per_s"], summary["plain_steps_per_s"]
        print(
            f"{name:22} {f['median']:9.1f} [{f['min']:.1f}-{f['max']:.1f}] {p['median']:9.1f} [{p['min']:.1f}-{p['max']:.1f}] "
            f"{summary['ratio_median']:9.3f} [{min(summary['ratio_per_round']):.3f}-{max(summary['ratio_per_round']):.3f}]",
            flush=True,
        )
        if "graph_gpu_ms_per_step" in summary:
            print(
                f"{'':22} a replay of the captured step: {summary['graph_gpu_ms_per_step']:.3f} ms of GPU time; "
                f"the framework's step: {summary['framework_wall_ms_per_step']:.3f} ms wall",
                flush=True,
            )
        for peer, timed in summary.get("peers", {}).items():
            rates, ratios = timed["steps_per_s"], timed["ratio_per_round"]
            print(f"{'':22} {'':22} {rates['median']:9.1f} [{rates['min']:.1f}-{rates['max']:.1f}] "
                  f"{timed['ratio_median']:9.3f} [{min(ratios):.3f}-{max(ratios):.3f}]  framework/{peer}", flush=True)  # fmt: skip
        if args.split:
            extra_ms = summary["extra_ms_per_step"]
            print(
                f"{'':22} framework - plain per step: {extra_ms['lightning_loop_and_callbacks']:.3f} ms Lightning's loop and callbacks, "
                f"{extra_ms['module_step']:.3f} ms the module's step beyond the plain step",
                flush=True,
            )
    if args.sweeps:
        results["sweeps"] = {"steps": args.sweep_steps}
        for name in sweep_cases:
            for jobs in sweep_jobs:
                timed = sweep_wall_times(VECTORIZED_CASES[name], jobs, args.sweep_steps, folder, args.overrides)
                results["sweeps"].setdefault(name, {})[str(jobs)] = timed
                line = ", ".join(f"{launcher} {t['wall_s']:.1f} s ({t['seed_steps_per_s']:.1f} seed-steps/s, {t['wall_time_vs_basic']:.3f} of basic)"
                                 for launcher, t in timed.items())  # fmt: skip
                print(f"sweep of {jobs} seeds, {name}: {line}", flush=True)
    if args.vectorized:
        results["vectorized"] = vectorized_speed(args.rounds, args.warmup, args.steps, folder, args.overrides)
        for name, timed in results["vectorized"].items():
            line = ", ".join(
                f"{members} seeds {v['seed_steps_per_s']:.0f} ({v['vs_separate']:.2f}x)"
                for members, v in timed["vectorized"].items()
            )
            print(
                f"vectorized {name}: separate run {timed['separate_seed_steps_per_s']:.0f} seed-steps/s; {line}",
                flush=True,
            )
    if args.augment:
        results["augment"] = augment_cost("dcgan_fashion_mnist", args.rounds, args.warmup, args.steps, folder,
                                          args.overrides)  # fmt: skip
        for name, timed in results["augment"].items():
            print(f"augment {name:34} {timed['steps_per_s']:7.1f} steps/s, step time {timed['step_time_vs_none']:.3f}"
                  " of none", flush=True)  # fmt: skip
    if args.search:
        results["search"] = search_cost("mlp_ring8_small", args.rounds, args.warmup, args.steps, folder, args.overrides)
        for name, timed in results["search"].items():
            print(f"search {name:18} {timed['steps_per_s']:7.1f} steps/s, step time {timed['step_time_vs_outside']:.3f}"
                  " of outside a search", flush=True)  # fmt: skip
    if args.fid:
        results["fid_10k_domain"] = fid_cost(folder)
        print(
            f"FID on 10 000 samples (domain extractor): {results['fid_10k_domain']['first_s']:.1f} s first, {results['fid_10k_domain']['cached_s']:.1f} s with cached real features"
        )
    if args.scaling:
        results["scaling"] = scaling(args.warmup, args.steps, folder)
        for row in results["scaling"]["batch_size"]:
            print(
                f"batch {row['batch_size']:4d}: {row['ms_per_step']:7.1f} ms/step, {row['samples_per_s']:8.0f} samples/s"
            )
        for row in results["scaling"]["width"]:
            print(f"width x{row['width_factor']}: {row['ms_per_step']:7.1f} ms/step")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results written to {args.out}")
    if failed:
        raise UserError(
            f"cases={','.join(failed)} could not be timed (said above); the other results are in {args.out}."
        )
    return 0


if __name__ == "__main__":
    main_guard(main)
