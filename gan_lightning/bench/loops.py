"""The benchmark's measurements: the framework's training step against a plain PyTorch loop (and the peers), the
cost of an FID evaluation, scaling with batch size and width, launcher wall times and vectorized seeds."""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelSummary

from gan_lightning.bench.cases import CASES, FRAMEWORK, LAUNCHERS, MEMBERS, SWEEP, VECTORIZED_CASES
from gan_lightning.bench.peers import PEERS, plain_autocast
from gan_lightning.config import compose, to_config, validate
from gan_lightning.data.batches import TensorBatches
from gan_lightning.runs.build import build_datamodule, build_module, build_trainer, with_speed_options
from gan_lightning.runs.context import RunContext
from gan_lightning.training.cuda_graphs import WARMUP_STEPS, on_side_stream
from gan_lightning.training.losses import batch_coupled
from gan_lightning.training.module import GAN, split


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


def framework_training(
    cfg, data: torch.Tensor, total_steps: int, folder: Path, *callbacks: pl.Callback, module_class: type = GAN
):
    """The framework's training on ``data``, as a run of ``python -m gan_lightning.run`` trains; returns the module."""
    cfg.trainer.max_steps = total_steps
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.data = data  # the same tensor as the plain loop, already in memory
    module = build_module(cfg, module_class)
    trainer = build_trainer(cfg, RunContext(folder, name="bench"))
    trainer.callbacks[:] = [c for c in trainer.callbacks if not isinstance(c, ModelSummary)] + list(
        callbacks
    )  # no table per round
    trainer.fit(module, datamodule=datamodule)
    return module


def framework_round(cfg, data: torch.Tensor, warmup: int, steps: int, folder: Path, module_class: type = GAN) -> float:
    timer = StepTimer(warmup, warmup + steps)
    # One step more: the last step's end-of-run callbacks fall outside the timed window.
    framework_training(cfg, data, warmup + steps + 1, folder, timer, module_class=module_class)
    return timer.steps_per_s


def endless(batches: TensorBatches):
    while True:
        yield from batches


def plain_device(cfg) -> torch.device:
    """Where the plain loop trains: the GPU when there is one and the configuration does not ask for the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() and cfg.trainer.accelerator != "cpu" else "cpu")


class PlainStep:
    """One step of the loop a researcher would write by hand, doing the same work per step as the
    framework's and drawing the same latents (from the same seed, it trains the same weights)."""

    def __init__(
        self, objective, generator: torch.nn.Module, discriminator: torch.nn.Module, d_optimizer, g_optimizer, d_steps: int, simultaneous: bool,
        d_batch_stats: str = "separate", g_fakes: str = "reuse",
    ):  # fmt: skip
        self.generator, self.discriminator, self.objective = generator, discriminator, objective
        self.d_optimizer, self.g_optimizer, self.k = d_optimizer, g_optimizer, d_steps
        coupled = batch_coupled(discriminator)
        self.separate = coupled and d_batch_stats == "separate"
        self.g_scores_real = objective.g_uses_real or (coupled and not self.separate)
        self.simultaneous = simultaneous
        self.reuse_fakes = g_fakes == "reuse"

    def scores(self, real: torch.Tensor, fake: torch.Tensor):
        """D's outputs for real and fake samples: in a forward pass each, or in one over both."""
        if self.separate:
            return self.discriminator(real), self.discriminator(fake)
        return self.discriminator(torch.cat([real, fake])).split(len(real))

    def __call__(self, samples: torch.Tensor) -> None:
        generator, discriminator, objective, batch = (
            self.generator,
            self.discriminator,
            self.objective,
            len(samples) // self.k,
        )
        d_optimizer, g_optimizer = self.d_optimizer, self.g_optimizer
        reals = split(samples, self.k)
        for real in reals[:-1] if self.simultaneous else reals:
            with torch.set_grad_enabled(
                self.reuse_fakes and real is reals[-1]
            ):  # G's update scores the last fakes again
                fake = generator(generator.sample_latent(batch))
            real_out, fake_out = self.scores(real, fake.detach())
            loss = objective.d_loss(real_out, fake_out)
            d_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            d_optimizer.step()
            objective.after_d_step(discriminator)
        if self.simultaneous:
            fake = generator(generator.sample_latent(batch))
            real_out, fake_out = self.scores(reals[-1], fake)
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
            if not self.reuse_fakes:
                fake = generator(generator.sample_latent(batch))
            real_out, fake_out = self.scores(real, fake) if self.g_scores_real else (None, discriminator(fake))
            loss = objective.g_loss(fake_out, real_out)
            g_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            g_optimizer.step()
            discriminator.requires_grad_(True)


class CapturedPlainStep:
    """PlainStep as PyTorch's CUDA-graph recipe has a user write it: a few eager steps on a side stream, then the
    step captured once with a static input batch, and replayed."""

    def __init__(self, step: PlainStep, device: torch.device):
        self.step, self.device = step, device
        self.eager_steps, self.graph, self.inputs = 0, None, None

    def __call__(self, samples: torch.Tensor) -> None:
        if self.graph is not None:
            self.inputs.copy_(samples, non_blocking=True)
        elif self.eager_steps < WARMUP_STEPS:
            self.eager_steps += 1
            on_side_stream(self.device, self.step, samples)
            return
        else:
            self.inputs, self.graph = samples.clone(), torch.cuda.CUDAGraph()
            torch.cuda.synchronize(self.device)
            with torch.cuda.graph(self.graph):
                self.step(self.inputs)
        self.graph.replay()


def plain_training(cfg, data: torch.Tensor, total_steps: int, after_step: Callable[[int], None] = lambda step: None):
    """The hand-written loop around PlainStep (captured as a CUDA graph with trainer.cuda_graph=true); returns (G, D)."""
    pl.seed_everything(cfg.seed, verbose=False)
    device = plain_device(cfg)
    generator, discriminator = cfg.model.build(cfg.data.sample_shape, cfg.data.value_range, cfg.objective.per_sample_d)
    generator, discriminator = with_speed_options(cfg, generator.to(device), discriminator.to(device))
    capturable = cfg.trainer.cuda_graph
    d_optimizer = cfg.optimizer.d.build(discriminator.parameters(), capturable=capturable)
    g_optimizer = cfg.optimizer.g.build(generator.parameters(), capturable=capturable)
    simultaneous = cfg.trainer.updates == "simultaneous"
    step = PlainStep(
        cfg.objective,
        generator,
        discriminator,
        d_optimizer,
        g_optimizer,
        cfg.trainer.d_steps,
        simultaneous,
        cfg.model.d_batch_stats,
        cfg.trainer.g_fakes,
    )
    if cfg.trainer.cuda_graph:
        step = CapturedPlainStep(step, device)
    # Held on the training device and drawn by index, as the framework holds small data sets.
    batches = endless(TensorBatches(data.to(device), cfg.data.batch_size * cfg.trainer.d_steps, cfg.seed))
    for number in range(1, total_steps + 1):
        with plain_autocast(cfg, device):
            step(next(batches))
        after_step(number)
    return generator, discriminator


class PlainStepInLightning(GAN):
    """The framework's module, trainer, in-memory data and callbacks, with PlainStep as the training step.
    Its time per step less the plain loop's is what Lightning's loop and the callbacks cost; the
    framework's less its own is what the module's step adds to the plain step."""

    def on_train_start(self) -> None:
        super().on_train_start()
        d_optimizer, g_optimizer = (optimizer.optimizer for optimizer in self.optimizers())
        d_batch_stats = "separate" if self.losses.separate_batches else "joint"
        g_fakes = "reuse" if self.reuse_fakes else "fresh"
        self.plain_step = PlainStep(
            self.objective,
            self.generator,
            self.discriminator,
            d_optimizer,
            g_optimizer,
            self.d_steps,
            self.simultaneous,
            d_batch_stats,
            g_fakes,
        )

    def training_step(self, batch, batch_idx: int) -> None:
        self.plain_step(batch)
        self.count_step()


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
    plain_in_lightning: List[float] = field(default_factory=list)  # with split=true
    # Steps/s per round of the other loops timed beside the framework: each pattern of peers.py with peers=true, and
    # with trainer.cuda_graph=true the plain loop without graphs (what a user gains: the loop they would write otherwise).
    peers: Dict[str, List[float]] = field(default_factory=dict)
    graph_gpu_ms: float | None = None  # with trainer.cuda_graph=true: GPU time of one replay of the framework's step

    def summary(self) -> Dict:
        def spread(xs: List[float]) -> Dict[str, float]:
            return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "rounds": xs}

        # Each round's two loops run back to back, so a change in the machine's speed between rounds (a shared
        # VM's neighbours) cancels in that round's ratio; the ratio of the median rates would mix rounds.
        ratios = [f / p for f, p in zip(self.framework, self.plain)]
        summary = {
            "case": self.case,
            "framework_steps_per_s": spread(self.framework),
            "plain_steps_per_s": spread(self.plain),
            "ratio_median": statistics.median(ratios),
            "ratio_per_round": ratios,
            "ratio_of_median_rates": statistics.median(self.framework) / statistics.median(self.plain),
        }
        if self.peers:
            summary["peers"] = {}
            for peer, rates in self.peers.items():
                per_round = [f / p for f, p in zip(self.framework, rates)]
                summary["peers"][peer] = {
                    "steps_per_s": spread(rates),
                    "ratio_median": statistics.median(per_round),
                    "ratio_per_round": per_round,
                }
        if self.graph_gpu_ms is not None:
            summary["graph_gpu_ms_per_step"] = self.graph_gpu_ms
            summary["framework_wall_ms_per_step"] = 1000 / statistics.median(self.framework)
        if self.plain_in_lightning:
            ms = {label: 1000 / statistics.median(rates) for label, rates in
                  (("framework", self.framework), ("plain", self.plain), ("plain_in_lightning", self.plain_in_lightning))}  # fmt: skip
            summary["plain_step_in_lightning_steps_per_s"] = spread(self.plain_in_lightning)
            summary["extra_ms_per_step"] = {
                "lightning_loop_and_callbacks": ms["plain_in_lightning"] - ms["plain"],
                "module_step": ms["framework"] - ms["plain_in_lightning"],
            }
        return summary


EAGER_PLAIN = "plain loop without CUDA graphs"  # beside the framework with trainer.cuda_graph=true


def compare(
    name: str,
    rounds: int,
    warmup: int,
    steps: int,
    folder: Path,
    extra: List[str] = (),
    split: bool = False,
    peers: bool = False,
) -> Comparison:
    """``rounds`` rounds of each loop on case ``name``; with ``split``, also of PlainStepInLightning; with ``peers``,
    also of each pattern of gan_lightning.peers; with trainer.cuda_graph=true, also of the plain loop without graphs."""
    cfg = case_config(name, extra)
    data = case_data(cfg, name)
    others: Dict[
        str, Callable[[], float]
    ] = {}  # the loops timed after the framework and the plain loop: steps/s of a round
    if peers:
        for peer in PEERS:
            others[peer] = lambda peer=peer: PEERS[peer](
                case_config(name, extra), data, warmup, steps, plain_device(cfg)
            )
    if cfg.trainer.cuda_graph:
        others[EAGER_PLAIN] = lambda: plain_round(
            case_config(name, [*extra, "trainer.cuda_graph=false"]), data, warmup, steps
        )
    result = Comparison(name, [], [], peers={other: [] for other in others})
    for r in range(rounds):
        # Alternate which loop goes first, so neither always runs on a warmer (or busier) machine. The plain loop
        # stays next to both loops it is compared with (the framework and, with split, the plain step in
        # Lightning), so that each pair runs back to back; the other loops come after them, in the same round.
        runs: List[Callable[[], None]] = [
            lambda r=r: result.framework.append(
                framework_round(case_config(name, extra), data, warmup, steps, folder / f"{name}_{r}")
            ),
            lambda: result.plain.append(plain_round(case_config(name, extra), data, warmup, steps)),
        ]
        if split:
            runs.append(lambda r=r: result.plain_in_lightning.append(
                framework_round(case_config(name, extra), data, warmup, steps, folder / f"{name}_{r}_plain_step", PlainStepInLightning)))  # fmt: skip
        for other, rates in result.peers.items():
            runs.append(lambda other=other, rates=rates: rates.append(others[other]()))
        for run in runs if r % 2 == 0 else reversed(runs):
            run()
    if cfg.trainer.cuda_graph:
        result.graph_gpu_ms = graph_gpu_ms(case_config(name, extra), data, warmup, folder / f"{name}_graph")
    return result


class ReplayTimer(pl.Callback):
    """After step ``at``, the GPU time of ``replays`` replays of the step's graph (CUDA events), in milliseconds per
    replay: against the wall time per step, what is left is the CPU's time per step. The replays train on."""

    def __init__(self, at: int, replays: int = 200):
        self.at, self.replays, self.ms = at, replays, None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if module.steps_done != self.at:
            return
        graph = next(iter(module.steps.graphs.graphs.values())).graph
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(10):
            graph.replay()
        start.record()
        for _ in range(self.replays):
            graph.replay()
        end.record()
        torch.cuda.synchronize()
        self.ms = start.elapsed_time(end) / self.replays


def graph_gpu_ms(cfg, data: torch.Tensor, warmup: int, folder: Path) -> float:
    """Milliseconds of GPU time per replay of the framework's captured step."""
    timer = ReplayTimer(warmup + WARMUP_STEPS + 1)
    framework_training(cfg, data, timer.at + 1, folder, timer)
    return timer.ms


def fid_cost(folder: Path) -> Dict[str, float]:
    """Seconds for one image-metrics evaluation on 10 000 generated Fashion-MNIST images (domain extractor):
    the first computes the real features and what KID and precision/recall keep of them; the second finds them
    kept, as every later evaluation of a run does."""
    from gan_lightning.files import cache_root
    from gan_lightning.metrics.fidelity import ImageQuality, shared_features

    shared_features.cache_clear()

    cfg = case_config(
        "dcgan_fashion_mnist",
        [
            "metrics=image",
            "metrics.final_num_samples=10000",
            "metrics.real_num_samples=10000",
            "metrics.real_split=test",
        ],
    )
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


def scaling(warmup: int, steps: int, folder: Path) -> Dict[str, List[Dict]]:
    """Framework steps/s of dcgan on Fashion-MNIST as the batch size and the model width grow."""
    name = "dcgan_fashion_mnist"
    cfg = case_config(name)
    data = case_data(cfg, name)
    table: Dict[str, List[Dict]] = {"batch_size": [], "width": []}
    for batch in (32, 64, 128, 256, 512):
        rate = framework_round(
            case_config(name, [f"data.batch_size={batch}"]), data, warmup, steps, folder / f"batch{batch}"
        )
        table["batch_size"].append(
            {"batch_size": batch, "steps_per_s": rate, "ms_per_step": 1000 / rate, "samples_per_s": rate * batch}
        )
    base = 32
    for factor in (1, 2, 4):
        width = base * factor
        rate = framework_round(
            case_config(name, [f"model.g_width={width}", f"model.d_width={width}"]),
            data,
            warmup,
            steps,
            folder / f"width{width}",
        )
        table["width"].append(
            {"width_factor": factor, "g_width": width, "steps_per_s": rate, "ms_per_step": 1000 / rate}
        )
    return table


def sweep_wall_times(case: List[str], jobs: int, steps: int, folder: Path, overrides: List[str]) -> Dict[str, Dict]:
    """Wall seconds of a ``jobs``-seed multirun of ``case`` through each launcher, seed-steps per second (training
    steps × jobs per wall second) and each launcher's wall time over the basic launcher's."""
    import subprocess

    seeds = ",".join(str(seed) for seed in range(jobs))
    timed: Dict[str, Dict] = {}
    for launcher, launcher_overrides in LAUNCHERS.items():
        sweep_dir = folder / f"sweep_{launcher}"
        shutil.rmtree(sweep_dir, ignore_errors=True)  # a fresh sweep, not a resumed one
        command = [sys.executable, "-m", "gan_lightning.run", "-m", *case, *SWEEP, f"trainer.max_steps={steps}", f"seed={seeds}", *overrides,
                   *launcher_overrides, f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(
                f"the {launcher} launcher's sweep failed (exit code {result.returncode}):\n{result.stderr[-3000:]}"
            )
        timed[launcher] = {"wall_s": seconds, "seed_steps_per_s": jobs * steps / seconds}
    for launcher in LAUNCHERS:
        timed[launcher]["wall_time_vs_basic"] = timed[launcher]["wall_s"] / timed["basic"]["wall_s"]
    return timed


def vectorized_round(cfg, members: int, warmup: int, steps: int, folder: Path) -> float:
    """Steady-state training steps per second of ``members`` seeds trained as one group, in the framework's trainer."""
    from gan_lightning.sweeps.vectorized.module import build_group

    cfg.trainer.max_steps = warmup + steps + 1
    group = build_group(cfg, list(range(members)))
    timer = StepTimer(warmup, warmup + steps)
    trainer = build_trainer(cfg, RunContext(folder, name="bench"))
    trainer.callbacks[:] = [
        timer
    ]  # a run's sample grids and checkpoints are one run's: none inside the timed window either way
    trainer.fit(group.module, datamodule=group.datamodule)
    return timer.steps_per_s


def vectorized_speed(rounds: int, warmup: int, steps: int, folder: Path, overrides: List[str]) -> Dict[str, Dict]:
    """Seed-steps per second (steps × seeds per second) of one separate run and of groups of MEMBERS seeds,
    alternating in each round; the ratio is the group's over the separate run's, the median over rounds."""
    results: Dict[str, Dict] = {}
    for name, case in VECTORIZED_CASES.items():
        cfg = to_config(compose([*case, *FRAMEWORK, *overrides]))
        validate(cfg)
        separate: List[float] = []
        grouped: Dict[int, List[float]] = {members: [] for members in MEMBERS}
        for _ in range(rounds):
            separate.append(framework_round(cfg, cfg.data.load(cfg.seed), warmup, steps, folder))
            for members in MEMBERS:
                grouped[members].append(members * vectorized_round(cfg, members, warmup, steps, folder))
        results[name] = {
            "separate_seed_steps_per_s": statistics.median(separate),
            "vectorized": {
                str(members): {
                    "seed_steps_per_s": statistics.median(rates),
                    "vs_separate": statistics.median(r / s for r, s in zip(rates, separate)),
                }
                for members, rates in grouped.items()
            },
        }
    return results


AUGMENTATIONS = {
    "diffaug color": ["augment=diffaug", "augment.policy=[color]"],
    "diffaug translation": ["augment=diffaug", "augment.policy=[translation]"],
    "diffaug cutout": ["augment=diffaug", "augment.policy=[cutout]"],
    "diffaug color,translation,cutout": ["augment=diffaug"],
    # p held where it starts (no adjustment within a round): at 0 the pipeline is skipped; above, every transform
    # is computed for every image and masked, so its cost does not depend on p.
    "ada p=0": ["augment=ada", "augment.p=0", f"augment.interval={10**9}"],
    "ada p=0.2": ["augment=ada", "augment.p=0.2", f"augment.interval={10**9}"],
    "ada p=1": ["augment=ada", "augment.p=1", f"augment.interval={10**9}"],
}


def augment_cost(
    case: str, rounds: int, warmup: int, steps: int, folder: Path, overrides: List[str]
) -> Dict[str, Dict]:
    """The framework's steps per second of ``case`` with each augmentation against none, alternating in every round;
    the ratio is none's rate over the augmentation's (the step's time relative to an unaugmented step), the median
    over rounds."""
    base = case_config(case, overrides)
    data = case_data(base, case)
    rates: Dict[str, List[float]] = {"none": [], **{name: [] for name in AUGMENTATIONS}}
    for _ in range(rounds):
        rates["none"].append(framework_round(case_config(case, overrides), data, warmup, steps, folder))
        for name, augment in AUGMENTATIONS.items():
            rates[name].append(framework_round(case_config(case, [*overrides, *augment]), data, warmup, steps, folder))
    return {
        name: {
            "steps_per_s": statistics.median(timed),
            "step_time_vs_none": statistics.median(none / rate for none, rate in zip(rates["none"], timed)),
        }
        for name, timed in rates.items()
    }


def search_cost(case: str, rounds: int, warmup: int, steps: int, folder: Path, overrides: List[str]) -> Dict[str, Dict]:
    """The framework's steps per second of ``case`` measuring its mode metrics every 50 steps, as a trial of a search
    (each value reported to a study in SQLite, the median pruner asked every time and never stopping it) and as the
    same run outside a search, alternating in every round; the ratio is the step's time as a trial over outside."""
    import optuna

    from gan_lightning.study.records import StoredStudy
    from gan_lightning.study.settings import SearchSettings
    from gan_lightning.study.storage import open_storage
    from gan_lightning.study.trial import ReportToStudy, TrialLink

    measured = [*overrides, "metrics=toy2d", "metrics.every_n_steps=50"]
    data = case_data(case_config(case, measured), case)
    node = compose(["hydra/sweeper=search", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=1000000"],
                   with_hydra=True).hydra.sweeper  # fmt: skip
    settings = SearchSettings.of(node)
    folder.mkdir(parents=True, exist_ok=True)
    storage = open_storage(None, folder)  # SQLite, as a sweep keeps its study
    study = optuna.create_study(
        storage=storage, study_name="bench", load_if_exists=True, pruner=settings.build_pruner()
    )
    stored = StoredStudy(study, storage)
    rates: Dict[str, List[float]] = {"outside a search": [], "trial": []}
    for _ in range(rounds):
        rates["outside a search"].append(framework_round(case_config(case, measured), data, warmup, steps, folder))
        reporter = ReportToStudy(TrialLink(stored, study.ask().number, settings), "reverse_kl")
        timer = StepTimer(warmup, warmup + steps)
        framework_training(case_config(case, measured), data, warmup + steps + 1, folder, reporter, timer)
        assert reporter.reported and reporter.ended_as is None  # it reported, and went on
        rates["trial"].append(timer.steps_per_s)
    outside = rates["outside a search"]
    return {
        name: {"steps_per_s": statistics.median(timed),
               "step_time_vs_outside": statistics.median(o / rate for o, rate in zip(outside, timed))}
        for name, timed in rates.items()
    }  # fmt: skip
