"""The DDP strategy and launcher of data-parallel jobs, built on Lightning's (and their private parts).

``trainer.strategy=gan_ddp`` wraps G and D in separate DDP instances; the launcher starts the other
processes of a job by re-running the job, not the whole command line.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import nullcontext
from typing import Any, Callable, List, Optional

import torch
from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning_fabric.utilities.distributed import _set_num_threads_if_needed
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from torch.nn.parallel import DistributedDataParallel

log = logging.getLogger("gan_lightning")

# What the launcher sets in the parent process for the job's processes; restored when the job ends.
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def job_command(local_rank: int) -> List[str]:
    """The command that runs this Hydra job (not the whole multirun) as one more process in its run directory."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    run_dir = str(hc.runtime.output_dir).replace("\\", "\\\\").replace("'", "\\'")
    return [
        sys.executable,
        "-m",
        "gan_lightning.run",
        *hc.overrides.task,
        f"hydra.run.dir='{run_dir}'",
        "hydra.output_subdir=null",  # the job's .hydra/ is rank 0's
        f"hydra.job.name={hc.job.name}_rank{local_rank}",  # its log: <run dir>/run_rank<N>.log
    ]


class JobLauncher(_SubprocessScriptLauncher):
    """Starts processes 1..N-1 of a job by re-running the job in the same run directory.

    Lightning's own launcher re-runs ``sys.argv`` with ``hydra.run.dir`` set to the run pattern: inside a
    multirun that re-launches the whole sweep, and the children of a job land in a new directory. This one
    runs each process as a single run of exactly this job's overrides in this job's directory, and undoes
    the environment it set when the job ends, so the next job of an in-process multirun launches afresh.
    """

    def launch(self, function: Callable, *args: Any, trainer: Optional[Any] = None, **kwargs: Any) -> Any:
        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
            self.observer = JobObserver(main_pid=os.getpid(), child_processes=self.procs)
            self.observer.start()
        _set_num_threads_if_needed(num_processes=self.num_processes)
        return function(*args, **kwargs)

    def _call_children_scripts(self) -> None:
        self._check_can_spawn_children()
        self.saved_env = {key: os.environ.get(key) for key in LAUNCH_ENV}
        os.environ["MASTER_ADDR"] = self.cluster_environment.main_address
        os.environ["MASTER_PORT"] = str(self.cluster_environment.main_port)
        os.environ["NODE_RANK"] = str(self.cluster_environment.node_rank())
        os.environ["LOCAL_RANK"] = str(self.cluster_environment.local_rank())
        os.environ["WORLD_SIZE"] = str(self.num_processes * self.num_nodes)
        from hydra.core.hydra_config import HydraConfig

        cwd = HydraConfig.get().runtime.cwd
        for local_rank in range(1, self.num_processes):
            env = {**os.environ, "LOCAL_RANK": str(local_rank)}
            self.procs.append(subprocess.Popen(job_command(local_rank), env=env, cwd=cwd))

    def finish(self, timeout: float = 120) -> None:
        """Wait for the job's other processes to exit and restore the environment of the parent."""
        if getattr(self, "observer", None) is not None:
            self.observer.stopped = True  # from here on, how they exit is this job's business, not the process's
        for rank, proc in enumerate(self.procs, start=1):
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning(f"process {rank} of this job did not exit within {timeout:.0f} s; stopping it")
                proc.kill()
                proc.wait()
            if proc.returncode:
                log.warning(
                    f"process {rank} of this job exited with code {proc.returncode} (its log: run_rank{rank}.log)"
                )
        for key, value in getattr(self, "saved_env", {}).items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class JobObserver(_ChildProcessObserver):
    """Lightning's watch over the other processes (it kills the main process when one of them fails, which
    would otherwise wait in a collective), ended with the job: a failure of the last job's processes
    must not kill the next job of an in-process multirun."""

    stopped = False

    def _run(self) -> bool:
        return True if self.stopped else super()._run()


class GANDDPStrategy(DDPStrategy):
    """DDP for the GAN module.

    ``separate=True`` (``trainer.strategy=gan_ddp``) wraps G and D in their own DistributedDataParallel
    instances, as StyleGAN2-ADA and mmgeneration do; the module runs each update through the wrapper of
    the network it updates, so every backward pass synchronises exactly the gradients its optimizer uses.
    ``separate=False`` (``gan_ddp_find_unused``) is Lightning's one DDP over the whole module with
    ``find_unused_parameters=True``: each backward then walks the autograd graph to find the network that
    took no part, and all-reduces the gradient buckets of both networks: twice the traffic. Measured with
    2 CPU processes (gloo; ``scripts/bench_ddp.py``, docs/scaling.md), separate wrappers take
    15.8 ms per step against 20.0 ms on ring8/MLP, and 68.9 ms against 76.0 ms on a Fashion-MNIST DCGAN.

    ``forward_sync_buffers=False``: batch-norm running statistics and spectral-norm vectors only serve samples
    and checkpoints, which rank 0 makes from its own buffers and every rank loads on resume; broadcasting
    them before every forward pass costs a collective per update and, with several forward passes before a
    backward, overwrites buffers that autograd saved (PyTorch #22095). ``trainer.sync_batchnorm=true``
    normalises over the global batch instead (GPUs only).
    """

    def __init__(self, separate: bool = True, **kwargs: Any):
        kwargs.setdefault("forward_sync_buffers", False)  # still synchronised once, when DDP wraps the network
        if not separate:
            kwargs["find_unused_parameters"] = True
        super().__init__(**kwargs)
        self.separate = separate

    def _configure_launcher(self) -> None:
        if self._start_method == "popen":
            self._launcher = JobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)
        else:
            super()._configure_launcher()

    def configure_ddp(self) -> None:
        if not self.separate:
            super().configure_ddp()
            return
        module = self.model
        device_ids = self.determine_ddp_device_ids()
        # Built on a side stream on GPUs, as Lightning builds its own DDP wrapper.
        with torch.cuda.stream(torch.cuda.Stream()) if device_ids is not None else nullcontext():
            module.replicas = (
                DistributedDataParallel(module.generator, device_ids=device_ids, **self._ddp_kwargs),
                DistributedDataParallel(module.discriminator, device_ids=device_ids, **self._ddp_kwargs),
            )

    def teardown(self) -> None:
        module = self.lightning_module
        if module is not None and getattr(module, "replicas", None) is not None:
            module.replicas = None
        super().teardown()
        # A job of an in-process multirun must not inherit the process group (or launch environment) of the one before.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        if isinstance(self._launcher, JobLauncher):
            self._launcher.finish()


def build_strategy(name: str) -> Any:
    """A ``trainer.strategy`` name as what pl.Trainer takes."""
    if name == "gan_ddp":
        return GANDDPStrategy(separate=True)
    if name == "gan_ddp_find_unused":
        return GANDDPStrategy(separate=False)
    return name
