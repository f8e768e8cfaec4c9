"""The typed configuration: schemas registered in Hydra's ConfigStore, and checks that run before any work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from gan_lightning.augment import AugmentConfig
from gan_lightning.data import DataConfig
from gan_lightning.data.base import batch_too_large
from gan_lightning.errors import UserError, invalid, require_choice, require_positive
from gan_lightning.metrics import AutoMetrics, MetricsConfig
from gan_lightning.models import ModelConfig
from gan_lightning.registry import CONF_DIR, SCHEMAS
from gan_lightning.training.objectives import Objective
from gan_lightning.training.optim import OptimizerPair

# trainer.strategy: one device, or G and D in separate DDP wrappers (gan_lightning/adapter/ddp.py).
STRATEGIES = ("auto", "gan_ddp", "gan_ddp_find_unused")
# trainer.profiler: Lightning's profilers (gan_lightning/adapter/steploop.py), each writing its report to the run directory.
PROFILERS = ("simple", "advanced")


@dataclass
class TrainerConfig:
    # One training step is one iteration of Goodfellow et al.'s Algorithm 1: d_steps D updates (each on
    # its own real batch) then g_steps G updates. Logs, checkpoints and summaries count these steps.
    max_steps: int = MISSING
    d_steps: int = MISSING
    g_steps: int = MISSING
    # alternating: Algorithm 1, G is updated against the D of after D's update. simultaneous: the last D
    # update and the G update take their gradients from one forward pass at the same (D, G), then both step.
    updates: str = MISSING
    # reuse: G's first update scores the fakes of D's last update again (one G forward pass less, as PyTorch's
    # DCGAN example); fresh: it draws new latents, as Algorithm 1. Simultaneous updates share them anyway.
    g_fakes: str = MISSING
    accelerator: str = MISSING  # auto | cpu | gpu
    devices: Any = MISSING  # a count, a list of device ids, or "auto"
    num_nodes: int = MISSING
    strategy: str = MISSING  # auto (one device) | gan_ddp | gan_ddp_find_unused
    sync_batchnorm: bool = MISSING  # batch norm over the batches of all processes (GPUs only)
    channels_last: bool = MISSING  # NHWC memory format for convolutional G and D (faster on recent GPUs)
    compile: bool = MISSING  # torch.compile G and D (a one-off compilation, then faster steps)
    cuda_graph: bool = (
        MISSING  # the whole training step captured as CUDA graphs and replayed (gan_lightning/training/cuda_graphs.py)
    )
    precision: str = MISSING  # 32-true | bf16-mixed | 16-mixed
    num_threads: Optional[int] = MISSING  # PyTorch's intra-op CPU threads; null: PyTorch's default
    log_every_n_steps: int = MISSING
    deterministic: bool = MISSING
    on_nan: str = MISSING  # stop: end the run as diverged; skip: drop non-finite updates and count them
    max_skipped_fraction: float = MISSING  # on_nan=skip: past this fraction of dropped updates the run ends diverged
    profiler: Optional[str] = MISSING  # null | simple | advanced: Lightning's profiler, its report in the run directory
    # true: Lightning's per-step machinery is skipped where it adds nothing (gan_lightning/adapter/); false: plain Lightning.
    fast_path: bool = MISSING
    # true: a smoke run (debug=fast_dev_run): FAST_DEV_RUN_STEPS steps through everything a run does, quickly.
    fast_dev_run: bool = MISSING

    def check_machine(self) -> None:
        """The settings this machine cannot run (checked where the run runs: a SLURM job's node, not the login node)."""
        import torch

        if self.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
            raise invalid(
                "trainer.accelerator",
                self.accelerator,
                "auto or cpu: this machine has no CUDA GPU that PyTorch can use",
            )
        if self.accelerator == "mps" and not torch.backends.mps.is_available():
            raise invalid(
                "trainer.accelerator",
                self.accelerator,
                "auto or cpu: this machine has no Apple GPU (MPS) that PyTorch can use",
            )
        if self.cuda_graph and not torch.cuda.is_available():
            raise invalid(
                "trainer.cuda_graph",
                self.cuda_graph,
                "false: this machine has no CUDA GPU that PyTorch can use, and CUDA graphs run on one",
            )
        if self.precision in ("16-mixed", "16") and not (self.accelerator != "cpu" and torch.cuda.is_available()):
            raise invalid(
                "trainer.precision",
                self.precision,
                "32-true or bf16-mixed on the CPU (float16 mixed precision needs a CUDA GPU)",
            )

    def check(self) -> None:
        require_positive("trainer.max_steps", self.max_steps, "a positive number of training steps")
        require_positive("trainer.d_steps", self.d_steps, "at least 1 discriminator update per step")
        require_positive("trainer.g_steps", self.g_steps, "at least 1 generator update per step")
        require_choice("trainer.updates", self.updates, ("alternating", "simultaneous"))
        if self.updates == "simultaneous" and self.g_steps != 1:
            raise invalid(
                "trainer.g_steps",
                self.g_steps,
                "1 with trainer.updates=simultaneous (one G update shares the last D update's forward pass)",
            )
        require_choice("trainer.g_fakes", self.g_fakes, ("reuse", "fresh"))
        require_choice("trainer.accelerator", self.accelerator, ("auto", "cpu", "gpu", "cuda", "mps"))
        require_positive("trainer.num_nodes", self.num_nodes, "a positive number of nodes")
        if self.strategy not in STRATEGIES:
            # Lightning's own DDP strategies expect a gradient for every parameter in every backward pass;
            # alternating D and G updates never give one (Lightning issues #20328, #20866).
            raise invalid(
                "trainer.strategy",
                self.strategy,
                "auto (one device), gan_ddp (trainer=ddp, trainer=ddp_cpu) or gan_ddp_find_unused",
            )
        if self.strategy == "auto" and (self.num_nodes > 1 or _many(self.devices)):
            raise invalid(
                "trainer.strategy",
                self.strategy,
                f"gan_ddp for trainer.devices={self.devices!r} on {self.num_nodes} node(s) (trainer=ddp or trainer=ddp_cpu)",
            )
        if self.sync_batchnorm and self.accelerator == "cpu":
            raise invalid(
                "trainer.sync_batchnorm",
                self.sync_batchnorm,
                "false with trainer.accelerator=cpu (PyTorch's SyncBatchNorm runs on GPUs only)",
            )
        require_choice(
            "trainer.precision", self.precision, ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")
        )
        if self.num_threads is not None:
            require_positive(
                "trainer.num_threads", self.num_threads, "a positive number of threads, or null for PyTorch's default"
            )
        require_positive("trainer.log_every_n_steps", self.log_every_n_steps, "a positive number of steps")
        require_choice("trainer.on_nan", self.on_nan, ("stop", "skip"))
        if not 0.0 <= self.max_skipped_fraction <= 1.0:
            raise invalid(
                "trainer.max_skipped_fraction",
                self.max_skipped_fraction,
                "a fraction in [0, 1] of the updates that trainer.on_nan=skip may drop",
            )
        if self.profiler is not None and self.profiler not in PROFILERS:
            raise invalid("trainer.profiler", self.profiler, "null (none), " + " or ".join(PROFILERS))
        if self.cuda_graph:
            self.check_capturable()

    def check_capturable(self) -> None:
        """The settings a training step captured as a CUDA graph cannot run with (trainer.cuda_graph=true)."""
        because = "with trainer.cuda_graph=true"
        if self.accelerator in ("cpu", "mps"):
            raise invalid(
                "trainer.accelerator", self.accelerator, f"auto, gpu or cuda {because} (CUDA graphs run on CUDA GPUs)"
            )
        if self.strategy != "auto" or _many(self.devices) or self.num_nodes > 1:
            raise invalid(
                "trainer.strategy",
                self.strategy,
                f"auto on one device {because} (a captured step does not synchronise gradients)",
            )
        if self.precision not in ("32-true", "32", "bf16-mixed"):
            raise invalid(
                "trainer.precision",
                self.precision,
                f"32-true or bf16-mixed {because} (the others pass every update through Lightning's precision plugin)",
            )
        if self.on_nan != "stop":
            raise invalid(
                "trainer.on_nan", self.on_nan, f"stop {because} (skip reads every loss on the host before its update)"
            )
        if not self.fast_path:
            raise invalid(
                "trainer.fast_path",
                self.fast_path,
                f"true {because} (Lightning's own update wrappers call hooks in Python at every update)",
            )
        if self.compile:
            raise invalid(
                "trainer.compile",
                self.compile,
                f"false {because} (the captured step already issues every kernel at once)",
            )


def _many(devices: Any) -> bool:
    """Whether ``trainer.devices`` names more than one device ("auto" may or may not: Lightning decides)."""
    if isinstance(devices, str):
        return devices.strip() == "-1" or (devices.strip().isdigit() and int(devices) > 1) or "," in devices
    if isinstance(devices, int):
        return devices == -1 or devices > 1
    return len(devices) > 1


@dataclass
class RegularizationConfig:
    """Regularisers that combine with any objective (spectral normalisation is a model option)."""

    r1_gamma: float = MISSING  # R1 = γ/2 · E‖∇D(x)‖² on real data (Mescheder et al. 2018); 0: off
    r1_interval: int = MISSING  # lazy R1: every N-th D update, weighted by N (Karras et al. 2020)
    ema_decay: Optional[float] = MISSING  # EMA of G's weights, used for samples and evaluation; null: off
    ema_start_step: int = MISSING  # the EMA follows G exactly until this training step

    def check(self) -> None:
        if self.r1_gamma < 0:
            raise invalid("regularization.r1_gamma", self.r1_gamma, "zero (off) or a positive weight")
        require_positive("regularization.r1_interval", self.r1_interval, "at least 1 (every D update)")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise invalid(
                "regularization.ema_decay", self.ema_decay, "a decay in (0, 1) such as 0.999, or null for no EMA"
            )
        if self.ema_start_step < 0:
            raise invalid("regularization.ema_start_step", self.ema_start_step, "a step number, 0 or more")


@dataclass
class LoggerConfig:
    wandb: bool = MISSING  # log to Weights & Biases
    csv: bool = MISSING  # log scalars to csv/metrics.csv in the run directory
    project: str = MISSING
    entity: Optional[str] = MISSING
    group: Optional[str] = MISSING  # null: the sweep's directory for a multirun, none for a single run
    name: Optional[str] = MISSING  # null: built from the command-line overrides
    job_type: str = MISSING
    tags: List[str] = field(default_factory=lambda: MISSING)
    # auto: online where W&B credentials are found (wandb login, WANDB_API_KEY), else offline | offline | online |
    # disabled ("dryrun": W&B's older name for offline, which it sets itself)
    mode: str = MISSING
    log_model: bool = MISSING  # upload checkpoints as W&B artifacts
    # How long closing the W&B run may take before the run ends without waiting (W&B's own wait has no limit);
    # what it had not written stays in the run directory's wandb/ folder for `wandb sync`.
    finish_timeout_s: float = MISSING

    def check(self) -> None:
        require_choice("logger.mode", self.mode, ("auto", "offline", "online", "disabled", "dryrun"))
        require_positive("logger.finish_timeout_s", self.finish_timeout_s, "a positive number of seconds")


@dataclass
class CallbacksConfig:
    samples_every_n_steps: int = MISSING  # sample grid from a fixed latent batch; 0: only at the end
    num_samples: int = MISSING  # images in the grid, or points in a scatter plot
    # image grids enlarged by a whole factor to at least this many pixels on their longer side; 0: as generated
    samples_size: int = MISSING
    checkpoint_every_n_steps: int = MISSING  # 0: only at the end
    keep_every_n_steps: int = MISSING  # also keep checkpoints/step_<N>.ckpt every N steps; 0: none
    keep_limit: Optional[int] = MISSING  # keep at most this many step_<N>.ckpt, the latest; null: all
    keep_best: Optional[str] = (
        MISSING  # a metric (fid, modes, ...): checkpoints/best.ckpt at its best value; null: none
    )
    progress_every_n_steps: int = MISSING  # one progress line every N steps; 0: none
    # D's mean output on training against held-out reals (d/real_train, d/real_heldout, d/heldout_gap); 0: never
    d_health_every_n_steps: int = MISSING
    extra: List[Any] = field(
        default_factory=lambda: MISSING
    )  # more Lightning callbacks: [{_target_: class, arg: value}]

    def check(self, metrics) -> None:
        for name in (
            "samples_every_n_steps",
            "checkpoint_every_n_steps",
            "keep_every_n_steps",
            "progress_every_n_steps",
            "d_health_every_n_steps",
        ):
            if getattr(self, name) < 0:
                raise invalid(f"callbacks.{name}", getattr(self, name), "a number of steps, or 0 to turn it off")
        require_positive("callbacks.num_samples", self.num_samples, "a positive number of samples")
        if self.samples_size < 0:
            raise invalid(
                "callbacks.samples_size", self.samples_size, "a size in pixels, or 0 for the images as generated"
            )
        if self.keep_limit is not None:
            require_positive(
                "callbacks.keep_limit", self.keep_limit, "a positive number of checkpoints, or null to keep all"
            )
        if self.keep_best is not None and self.keep_best not in metrics.MEASURES:
            measured = ", ".join(metrics.MEASURES) or "none"
            raise invalid(
                "callbacks.keep_best",
                self.keep_best,
                f"a metric that metrics={metrics.option} measures ({measured}), or null",
            )


@dataclass
class Config:
    # One option of each config group (conf/<group>/), then the top-level settings of conf/config.yaml.
    model: ModelConfig = MISSING  # G and D
    data: DataConfig = MISSING  # the data set, its batch size and where it is
    objective: Objective = MISSING  # the losses of D and G
    optimizer: OptimizerPair = MISSING  # G's and D's optimizers
    regularization: RegularizationConfig = MISSING  # R1, EMA of G
    augment: AugmentConfig = MISSING  # what D's inputs go through: none, diffaug, ada
    trainer: TrainerConfig = MISSING  # steps, devices, precision, failure handling
    logger: LoggerConfig = MISSING  # W&B, CSV
    callbacks: CallbacksConfig = MISSING  # samples, checkpoints, progress
    metrics: MetricsConfig = MISSING  # sample quality
    seed: int = MISSING
    resume: str = MISSING  # auto: continue from checkpoints/last.ckpt when present; never; or a checkpoint path
    # A key of summary.json's metrics (or of the summary: wall_time_s) returned to sweepers; a list of keys for a search
    # with several objectives.
    optimized_metric: Any = MISSING
    verbose: bool = MISSING  # true: what dependencies print too (W&B's banner and summary, Lightning's tables)


def register_schemas() -> None:
    """Make the schemas known to Hydra: the root one and one per config-group option."""
    store = ConfigStore.instance()
    store.store(name="config_schema", node=Config)
    for group, options in SCHEMAS.items():
        for name, cls in options.items():
            store.store(group=f"schema/{group}", name=name, node=cls)


register_schemas()


def compose(overrides: List[str], with_hydra: bool = False) -> DictConfig:
    """The config ``python -m gan_lightning.run OVERRIDES`` would train with, composed without a run directory
    (``with_hydra``: with the ``hydra`` node, as a job sees it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)


def to_config(cfg: DictConfig) -> Config:
    """The composed DictConfig as typed objects (dataclass instances with their methods); ``metrics=auto`` becomes the
    metrics it chooses for the data."""
    try:
        config = OmegaConf.to_object(cfg)
    except MissingMandatoryValue as error:
        raise UserError(
            f"{error.full_key} has no value and needs one: set it on the command line ({error.full_key}=...)."
        ) from None
    if isinstance(config.metrics, AutoMetrics):
        config.metrics = config.metrics.choose(config.data)
    if config.trainer.fast_dev_run:
        smoke_run(config)
    return config


FAST_DEV_RUN_STEPS = 5


def smoke_run(config: Config) -> None:
    """trainer.fast_dev_run=true (debug=fast_dev_run): the run's own model, data and objective for a few steps, logging
    every step to the CSV log (no W&B), its metrics measured once at the end on a few samples, one sample grid and
    one checkpoint at the end: everything a run does, in seconds."""
    config.trainer.max_steps = min(config.trainer.max_steps, FAST_DEV_RUN_STEPS)
    config.trainer.log_every_n_steps = 1
    config.logger.wandb, config.logger.csv = False, True
    config.callbacks.samples_every_n_steps = config.callbacks.checkpoint_every_n_steps = (
        config.callbacks.keep_every_n_steps
    ) = 0
    config.callbacks.progress_every_n_steps = 1
    config.metrics = config.metrics.smoke()


def validate(cfg: Config) -> None:
    """Every check that needs no data and writes no file; raises UserError naming the first bad setting."""
    cfg.data.check()
    cfg.model.check(cfg.data.sample_shape)
    if cfg.data.batch_size % cfg.model.d_pack:
        # D scores real and fake batches side by side: a pack must never hold both.
        raise invalid(
            "data.batch_size",
            cfg.data.batch_size,
            f"a multiple of model.pack={cfg.model.d_pack}, so that every pack holds real or fake samples only",
        )
    cfg.optimizer.g.check("optimizer.g")
    cfg.optimizer.d.check("optimizer.d")
    cfg.regularization.check()
    cfg.trainer.check()
    cfg.augment.check(cfg.data, cfg.trainer)
    samples_per_step = cfg.data.batch_size * cfg.trainer.d_steps
    if cfg.data.known_size is not None and cfg.data.known_size < samples_per_step:
        raise batch_too_large(cfg.data.known_size, samples_per_step)
    if cfg.trainer.cuda_graph:
        cfg.optimizer.g.check_capturable("optimizer.g")
        cfg.optimizer.d.check_capturable("optimizer.d")
    cfg.logger.check()
    cfg.callbacks.check(cfg.metrics)
    cfg.metrics.check(cfg.data)
    metric = cfg.optimized_metric
    if not (
        metric is None
        or isinstance(metric, str)
        or (isinstance(metric, list) and all(isinstance(m, str) for m in metric))
    ):
        raise invalid("optimized_metric", metric, "a key of summary.json's metrics, a list of them, or null")
