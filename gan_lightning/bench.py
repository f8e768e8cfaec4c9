"""``python -m gan_lightning.bench``: the framework's training step against a hand-written PyTorch loop.

For each case both loops train the identical model (same architecture and initial weights), objective,
optimizers, batch size and in-memory data, in this process, alternating framework and plain rounds
after a warm-up in each, so that thread settings, caches and machine load treat both alike. Steps/s
are timed over the steps after the warm-up only. Also measured on request: the cost of an FID
evaluation, and how step time grows with batch size and model width.

    python -m gan_lightning.bench                          # the three cases, 5 rounds, results in bench.json
    python -m gan_lightning.bench --fid --scaling --out bench.json
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelSummary

from gan_lightning.build import RunContext, build_datamodule, build_module, build_trainer
from gan_lightning.config import compose, to_config, validate
from gan_lightning.data.batches import TensorBatches
from gan_lightning.module import batch_coupled
from gan_lightning.runtime import restore_cuda_check

# ring8 with PacGAN's networks (G 4 × 400 ReLU with batch norm, D 3 maxout layers of 200 × 5), the model
# this data set is studied with; "mlp_ring8_small" is the default MLP, whose 5 ms steps expose the
# framework's fixed cost per step.
PACGAN_MLP = ["model.g_hidden=[400,400,400,400]", "model.d_hidden=[200,200,200]", "model.d_activation=maxout", "model.d_maxout_pieces=5"]
CASES: Dict[str, List[str]] = {
    "mlp_ring8": ["model=mlp", "data=ring8", *PACGAN_MLP],
    "mlp_ring8_small": ["model=mlp", "data=ring8"],
    "dcgan_fashion_mnist": ["model=dcgan", "data=fashion_mnist"],
    "dcgan_cifar_size": ["model=dcgan", "data=cifar10"],  # random 32×32×3 data: CIFAR-10's size, not its pixels
    # Simultaneous updates: D's and G's gradients from one forward pass (one G and one D forward fewer per step).
    "mlp_ring8_simultaneous": ["model=mlp", "data=ring8", *PACGAN_MLP, "trainer.updates=simultaneous"],
    "dcgan_fashion_mnist_simultaneous": ["model=dcgan", "data=fashion_mnist", "trainer.updates=simultaneous"],
}
# The framework as used: CSV logging every 50 steps, no sample grids or checkpoints inside the timed window.
FRAMEWORK = ["logger=csv", "callbacks.samples_every_n_steps=0", "callbacks.checkpoint_every_n_steps=0", "callbacks.progress_every_n_steps=0"]


def case_config(name: str, extra: List[str] = ()):
    cfg = to_config(compose([*CASES[name], *FRAMEWORK, *extra]))
    validate(cfg)
    return cfg


def case_data(cfg, name: str) -> torch.Tensor:
    if name == "dcgan_cifar_size":
        return torch.rand(50_000, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return cfg.data.load(cfg.seed)


class StepTimer(pl.Callback):
    """Time from the end of step ``start`` to the end of step ``stop``."""

    def __init__(self, start: int, stop: int):
        self.start, self.stop, self.times = start, stop, {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.steps_done in (self.start, self.stop):
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize()
            self.times[pl_module.steps_done] = time.perf_counter()

    @property
    def steps_per_s(self) -> float:
        return (self.stop - self.start) / (self.times[self.stop] - self.times[self.start])


def framework_training(cfg, data: torch.Tensor, total_steps: int, folder: Path, *callbacks: pl.Callback):
    """The framework's training on ``data``, as a run of ``python -m gan_lightning.run`` trains; returns the module."""
    cfg.trainer.max_steps = total_steps
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.data = data  # the same tensor as the plain loop, already in memory
    module = build_module(cfg)
    trainer = build_trainer(cfg, RunContext(folder, name="bench"))
    trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, ModelSummary)] + list(callbacks)  # no table per round
    trainer.fit(module, datamodule=datamodule)
    return module


def framework_round(cfg, data: torch.Tensor, warmup: int, steps: int, folder: Path) -> float:
    timer = StepTimer(warmup, warmup + steps)
    # One step more: the last step's end-of-run callbacks fall outside the timed window.
    framework_training(cfg, data, warmup + steps + 1, folder, timer)
    return timer.steps_per_s


def endless(batches: TensorBatches):
    while True:
        yield from batches


def plain_device(cfg) -> torch.device:
    """Where the plain loop trains: the GPU when there is one and the configuration does not ask for the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")


def plain_training(cfg, data: torch.Tensor, total_steps: int, after_step: Callable[[int], None] = lambda step: None):
    """The loop a researcher would write by hand, doing the same work per step as the framework's (and
    drawing the same batches and latents: from the same seed, it trains the same weights); returns (G, D)."""
    pl.seed_everything(cfg.seed, verbose=False)
    device = plain_device(cfg)
    generator, discriminator = cfg.model.build(cfg.data.sample_shape, cfg.data.value_range, cfg.objective.per_sample_d)
    generator, discriminator = generator.to(device), discriminator.to(device)
    objective, batch, k = cfg.objective, cfg.data.batch_size, cfg.trainer.d_steps
    d_optimizer, g_optimizer = cfg.optimizer.d.build(discriminator.parameters()), cfg.optimizer.g.build(generator.parameters())
    joint = batch_coupled(discriminator) or objective.g_uses_real
    # Held on the training device and drawn by index, as the framework holds small data sets.
    batches = endless(TensorBatches(data.to(device), batch * k, cfg.seed))
    simultaneous = cfg.trainer.updates == "simultaneous"
    for step in range(1, total_steps + 1):
        reals = next(batches).chunk(k)
        for real in reals[:-1] if simultaneous else reals:
            with torch.no_grad():
                fake = generator(generator.sample_latent(batch))
            real_out, fake_out = discriminator(torch.cat([real, fake])).split(batch)
            loss = objective.d_loss(real_out, fake_out)
            d_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            d_optimizer.step()
            objective.after_d_step(discriminator)
        if simultaneous:
            fake = generator(generator.sample_latent(batch))
            real_out, fake_out = discriminator(torch.cat([reals[-1], fake])).split(batch)
            d_loss, g_loss = objective.d_loss(real_out, fake_out), objective.g_loss(fake_out, real_out)
            d_optimizer.zero_grad(set_to_none=True)
            g_optimizer.zero_grad(set_to_none=True)
            d_loss.backward(inputs=list(discriminator.parameters()), retain_graph=True)
            g_loss.backward(inputs=list(generator.parameters()))
            d_optimizer.step()
            objective.after_d_step(discriminator)
            g_optimizer.step()
        else:
            discriminator.requires_grad_(False)
            fake = generator(generator.sample_latent(batch))
            real_out, fake_out = discriminator(torch.cat([real, fake])).split(batch) if joint else (None, discriminator(fake))
            loss = objective.g_loss(fake_out, real_out)
            g_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            g_optimizer.step()
            discriminator.requires_grad_(True)
        after_step(step)
    return generator, discriminator


def plain_round(cfg, data: torch.Tensor, warmup: int, steps: int) -> float:
    times, on_gpu = {}, plain_device(cfg).type == "cuda"

    def mark(step: int) -> None:
        if step in (warmup, warmup + steps):
            if on_gpu:
                torch.cuda.synchronize()
            times[step] = time.perf_counter()

    plain_training(cfg, data, warmup + steps, mark)
    return steps / (times[warmup + steps] - times[warmup])


@dataclass
class Comparison:
    case: str
    framework: List[float]
    plain: List[float]

    def summary(self) -> Dict:
        def spread(xs: List[float]) -> Dict[str, float]:
            return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "rounds": xs}

        ratios = [f / p for f, p in zip(self.framework, self.plain)]
        return {
            "case": self.case,
            "framework_steps_per_s": spread(self.framework),
            "plain_steps_per_s": spread(self.plain),
            "ratio_median": statistics.median(self.framework) / statistics.median(self.plain),
            "ratio_per_round": ratios,
        }


def compare(name: str, rounds: int, warmup: int, steps: int, folder: Path, extra: List[str] = ()) -> Comparison:
    cfg = case_config(name, extra)
    data = case_data(cfg, name)
    result = Comparison(name, [], [])
    for r in range(rounds):
        # Alternate which loop goes first, so neither always runs on a warmer (or busier) machine.
        runs: List[Callable[[], None]] = [
            lambda: result.framework.append(framework_round(case_config(name, extra), data, warmup, steps, folder / f"{name}_{r}")),
            lambda: result.plain.append(plain_round(case_config(name, extra), data, warmup, steps)),
        ]
        for run in runs if r % 2 == 0 else reversed(runs):
            run()
    return result


def fid_cost(folder: Path) -> Dict[str, float]:
    """Seconds for one image-metrics evaluation on 10 000 generated Fashion-MNIST images (domain extractor):
    the first computes the real features, the second reads them from the cache."""
    from gan_lightning.metrics.fidelity import ImageQuality
    from gan_lightning.paths import cache_root

    cfg = case_config("dcgan_fashion_mnist", ["metrics=image", "metrics.final_num_samples=10000", "metrics.real_num_samples=10000", f"metrics.real_split=test"])
    cfg.metrics.prepare(cfg.data)
    module = build_module(cfg).eval()
    module.max_steps = module.steps_done
    # The first evaluation is timed from nothing: drop the reference set's cached features, which it recomputes.
    reference = ImageQuality(cfg.metrics, cfg.data, cfg.seed).real.cache_name
    for cached in (cache_root() / "fidelity").glob(f"{reference}-*"):
        cached.unlink()
    seconds = {}
    for label in ("first_s", "cached_s"):
        started = time.perf_counter()
        ImageQuality(cfg.metrics, cfg.data, cfg.seed).measure(module, final=True)
        seconds[label] = time.perf_counter() - started
    return seconds


class StandInStep(pl.LightningModule):
    """A training step of ``products`` matrix products and nothing else, recording when each step starts and ends."""

    def __init__(self, products: int, steps: int):
        super().__init__()
        self.automatic_optimization = False
        self.weight = torch.nn.Parameter(torch.randn(256, 256) / 16)
        self.products, self.steps, self.started, self.ended = products, steps, [], []

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def training_step(self, batch, batch_idx: int) -> None:
        self.started.append(time.perf_counter())
        x = torch.randn(100, 256)
        with torch.no_grad():
            for _ in range(self.products):
                x = torch.tanh(x @ self.weight)
        self.ended.append(time.perf_counter())
        if len(self.ended) == self.steps:
            self.trainer.should_stop = True


def loop_cost(steps: int, folder: Path) -> Dict[str, float]:
    """Median milliseconds Lightning's loop spends between two training steps (the framework's trainer and
    in-memory ring8 batches, no callbacks), after an empty step and after a step of tensor work as long as
    the default MLP's: the loop's Python runs slower once the step's arithmetic has filled the caches."""
    cfg = case_config("mlp_ring8_small")
    result = {}
    for label, products in (("empty_step", 0), ("busy_step", 75)):
        module = StandInStep(products, steps)
        trainer = build_trainer(cfg, RunContext(folder / f"loop_{label}", name="loop"))
        trainer.callbacks[:] = []
        trainer.fit(module, datamodule=build_datamodule(cfg))
        started, ended = torch.tensor(module.started, dtype=torch.float64), torch.tensor(module.ended, dtype=torch.float64)
        skip = steps // 10  # warm-up
        result[f"{label}_ms"] = 1000 * float((ended - started)[skip:].median())
        result[f"loop_after_{label}_ms"] = 1000 * float((started[1:] - ended[:-1])[skip:].median())
    return result


def scaling(warmup: int, steps: int, folder: Path) -> Dict[str, List[Dict]]:
    """Framework steps/s of dcgan on Fashion-MNIST as the batch size and the model width grow."""
    name = "dcgan_fashion_mnist"
    cfg = case_config(name)
    data = case_data(cfg, name)
    table: Dict[str, List[Dict]] = {"batch_size": [], "width": []}
    for batch in (32, 64, 128, 256, 512):
        rate = framework_round(case_config(name, [f"data.batch_size={batch}"]), data, warmup, steps, folder / f"batch{batch}")
        table["batch_size"].append({"batch_size": batch, "steps_per_s": rate, "ms_per_step": 1000 / rate, "samples_per_s": rate * batch})
    base = 32
    for factor in (1, 2, 4):
        width = base * factor
        rate = framework_round(case_config(name, [f"model.g_width={width}", f"model.d_width={width}"]), data, warmup, steps, folder / f"width{width}")
        table["width"].append({"width_factor": factor, "g_width": width, "steps_per_s": rate, "ms_per_step": 1000 / rate})
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_lightning.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps at the start of every round")
    parser.add_argument("--steps", type=int, default=150, help="timed steps per round")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both loops")
    parser.add_argument("--fid", action="store_true", help="also time an FID evaluation of 10 000 samples")
    parser.add_argument("--scaling", action="store_true", help="also time batch sizes 32-512 and widths x1, x2, x4")
    parser.add_argument("--loop", action="store_true", help="also time Lightning's loop between steps of a stand-in module")
    parser.add_argument("--out", default="bench.json")
    parser.add_argument("--workdir", default="bench_runs", help="where the framework's run files go")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    restore_cuda_check()  # the plain loop runs as it would in a process that never imported Lightning
    from gan_lightning.run import quiet_dependencies

    quiet_dependencies()
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    folder = Path(args.workdir)
    results = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "processor": platform.processor() or platform.machine(),
                    "cpus": __import__("os").cpu_count(), "threads": args.threads,
                    "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"},  # fmt: skip
        "settings": {"rounds": args.rounds, "warmup": args.warmup, "steps": args.steps},
        "cases": [],
    }
    print(f"{'case':22} {'framework steps/s':>22} {'plain steps/s':>22} {'ratio':>6}")
    for name in args.cases.split(","):
        summary = compare(name, args.rounds, args.warmup, args.steps, folder).summary()
        results["cases"].append(summary)
        f, p = summary["framework_steps_per_s"], summary["plain_steps_per_s"]
        print(f"{name:22} {f['median']:9.1f} [{f['min']:.1f}-{f['max']:.1f}] {p['median']:9.1f} [{p['min']:.1f}-{p['max']:.1f}] {summary['ratio_median']:6.3f}", flush=True)
    if args.fid:
        results["fid_10k_domain"] = fid_cost(folder)
        print(f"FID on 10 000 samples (domain extractor): {results['fid_10k_domain']['first_s']:.1f} s first, {results['fid_10k_domain']['cached_s']:.1f} s with cached real features")
    if args.loop:
        results["lightning_loop"] = cost = loop_cost(2000, folder)
        print(f"Lightning's loop between steps: {cost['loop_after_empty_step_ms']:.3f} ms after an empty step, "
              f"{cost['loop_after_busy_step_ms']:.3f} ms after a {cost['busy_step_ms']:.1f} ms step of matrix products")
    if args.scaling:
        results["scaling"] = scaling(args.warmup, args.steps, folder)
        for row in results["scaling"]["batch_size"]:
            print(f"batch {row['batch_size']:4d}: {row['ms_per_step']:7.1f} ms/step, {row['samples_per_s']:8.0f} samples/s")
        for row in results["scaling"]["width"]:
            print(f"width x{row['width_factor']}: {row['ms_per_step']:7.1f} ms/step")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
