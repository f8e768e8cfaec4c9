"""trainer.cuda_graph: the training step captured as CUDA graphs trains what the eager step trains.

The GPU tests are skipped, with their reason, on a machine without CUDA; the refusals and the GPU-side record of
non-finite losses run everywhere.
"""

from __future__ import annotations

import logging
import math

import pytest
import torch

from gan_lightning.errors import Diverged
from gan_lightning.training.cuda_graphs import WARMUP_STEPS, Captured, StepGraphs
from tests.helpers.commands import run_command
from tests.helpers.hydra import run_in_process

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="trainer.cuda_graph captures CUDA graphs: this machine has no CUDA GPU"
)

# deterministic: cuDNN's convolution kernels then sum in a fixed order, so two runs differ by what the graph changes alone.
QUIET = [
    "logger=none",
    "callbacks.progress_every_n_steps=0",
    "callbacks.samples_every_n_steps=0",
    "trainer.accelerator=gpu",
    "trainer.deterministic=true",
]
MLP = ["data=ring8", "model=mlp"]
PACGAN = ["data=grid25", "model=pacgan_mlp", "model.pack=2"]
DCGAN = ["data=fashion_mnist", "data.limit=4096", "model=dcgan", "model.g_width=16", "model.d_width=16"]
# Each model family, and each setting that changes what a step does, graphed against eager.
CASES = {
    "mlp": MLP,
    "mlp_k2_fresh_simultaneous": [*MLP, "trainer.d_steps=2", "trainer.updates=simultaneous"],
    "mlp_g_steps2_fresh_wgan_gp": [
        *MLP,
        "trainer.g_steps=2",
        "trainer.g_fakes=fresh",
        "objective=wgan_gp",
        "model.d_norm=none",
    ],
    "pacgan_packing_sgd": [*PACGAN, "optimizer=sgd"],
    "dcgan": DCGAN,
    "dcgan_r1_lazy_ema": [
        *DCGAN,
        "regularization.r1_gamma=1.0",
        "regularization.r1_interval=4",
        "regularization.ema_decay=0.99",
        "regularization.ema_start_step=50",
        "model.d_norm=layer",
    ],  # fmt: skip
    "dcgan_conditional_hinge": [*DCGAN, "model.conditional=true", "objective=hinge"],
    "dcgan_bf16_nchw": [*DCGAN, "trainer.precision=bf16-mixed", "trainer.channels_last=false"],
}
STEPS = 200


def trained(tmp_path, name, overrides, steps=STEPS):
    run_in_process([*QUIET, *overrides, f"trainer.max_steps={steps}"], tmp_path / name)
    return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-12))


@needs_cuda
@pytest.mark.parametrize("case", CASES)
def test_graphed_steps_train_the_weights_of_eager_steps(tmp_path, caplog, case):
    overrides = CASES[case]
    with caplog.at_level(logging.INFO, logger="gan_lightning"):
        graphed = trained(tmp_path, "graphed", [*overrides, "trainer.cuda_graph=true"])
    captures = [r.getMessage() for r in caplog.records if "captured as a CUDA graph" in r.getMessage()]
    # Each variant of the step (R1 due or not, EMA started or not) is captured after its own eager warm-up steps.
    first_captured = [int(message.split()[2]) for message in captures]
    assert captures and first_captured[0] >= WARMUP_STEPS + 1 and first_captured == sorted(first_captured)
    eager = trained(tmp_path, "eager", overrides)
    assert graphed["gan_lightning"]["steps_done"] == eager["gan_lightning"]["steps_done"] == STEPS
    assert graphed["global_step"] == eager["global_step"]  # Lightning counted every replayed optimizer step
    initial = trained(tmp_path, "initial", overrides, steps=1)["state_dict"]
    tolerance = 2e-2 if "bf16" in case else 1e-3
    for key, weight in eager["state_dict"].items():
        if not weight.is_floating_point() or key.endswith(("num_batches_tracked", "_u", "_v")):
            continue
        # A tensor training never moves (a bias before batch norm, a critic's output bias) must stay equal too.
        moved, differs = (
            relative_difference(weight, initial[key]),
            relative_difference(graphed["state_dict"][key], weight),
        )
        assert differs < tolerance and differs <= moved / 10, (
            f"{key}: graphed and eager weights differ by {differs:.2e}, training moved them by {moved:.2e}"
        )


class InjectNaN:
    """Writes NaN into D's first weight, in place (the captured step reads that memory), before step ``step``."""

    def __new__(cls, step: int):
        import pytorch_lightning as pl

        class Callback(pl.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                if module.steps_done + 1 == step:
                    with torch.no_grad():
                        next(module.discriminator.parameters()).view(-1)[0] = float("nan")

        return Callback()


@needs_cuda
@pytest.mark.parametrize("graphed", [True, False])
def test_a_nan_at_step_n_is_reported_as_divergence_at_step_n(tmp_path, graphed):
    from gan_lightning.bench.loops import case_config, case_data, framework_training

    cfg = case_config(
        "mlp_ring8_small",
        ["trainer.accelerator=gpu", f"trainer.cuda_graph={str(graphed).lower()}", "trainer.log_every_n_steps=1000"],
    )
    with pytest.raises(Diverged) as raised:
        framework_training(cfg, case_data(cfg, "mlp_ring8_small"), 300, tmp_path, InjectNaN(137))
    assert raised.value.args[0].startswith("training diverged at step 137: loss/d = nan")


@needs_cuda
def test_a_graphed_run_resumed_from_its_checkpoint_continues_exactly(tmp_path):
    overrides = [*MLP, "trainer.cuda_graph=true"]
    straight = trained(tmp_path, "straight", overrides, steps=120)
    trained(tmp_path, "resumed", overrides, steps=60)
    resumed = trained(tmp_path, "resumed", overrides, steps=120)
    assert resumed["gan_lightning"]["steps_done"] == 120
    for key, weight in straight["state_dict"].items():
        assert torch.allclose(resumed["state_dict"][key], weight, rtol=1e-5, atol=1e-6), key


@needs_cuda
def test_vectorized_seeds_train_in_one_captured_step_as_they_do_eagerly(tmp_path):
    import subprocess
    import sys

    def member_weights(name, *extra):
        folder = tmp_path / name
        command = [sys.executable, "-m", "gan_lightning.run", "-m", *QUIET, *MLP, "metrics=none", "trainer.max_steps=150", "seed=0,1,2",
                   "hydra/launcher=vectorized", f"hydra.sweep.dir={folder}", *extra]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        checkpoints = sorted(folder.glob("*/checkpoints/last.ckpt"))
        assert len(checkpoints) == 3
        return [torch.load(c, weights_only=True)["state_dict"] for c in checkpoints]

    graphed, eager = member_weights("graphed", "trainer.cuda_graph=true"), member_weights("eager")
    for graphed_member, eager_member in zip(graphed, eager):
        for key, weight in eager_member.items():
            if weight.is_floating_point():
                assert relative_difference(graphed_member[key], weight) < 1e-3, key


# ---- everywhere ----------------------------------------------------------------------------------------------


def test_the_record_of_nonfinite_losses_charges_each_loss_to_the_first_step_it_was_not_finite():
    graphs = StepGraphs(torch.device("cpu"), watched=3)
    graphs.capturing = Captured(graph=None, inputs=(), outputs=((), {}))  # what the captured step records, run eagerly
    losses = {
        1: [1.0, 2.0, 3.0],
        2: [1.0, float("inf"), 3.0],
        3: [float("nan"), float("nan"), 3.0],
        4: [1.0, 2.0, torch.tensor([0.5, float("nan")])],  # a loss per member: one member's NaN counts
    }
    for step, values in losses.items():
        graphs.step.add_(1)
        graphs.slot = 0
        for name, value in zip(("loss/d", "loss/d", "loss/g"), values):
            graphs.watch(name, torch.as_tensor(value))
        if step == 1:
            assert graphs.first_nonfinite() is None
    assert graphs.first_nonfinite_step.tolist() == [3, 2, 4]
    step, name, value = graphs.first_nonfinite()
    assert (step, name) == (2, "loss/d") and math.isinf(value)


def test_a_machine_without_cuda_refuses_the_setting_before_the_run_starts(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: the refusal of machines without one cannot show here")
    done = run_command([*MLP, "trainer.max_steps=5", "trainer.cuda_graph=true"], cwd=tmp_path)
    message = "trainer.cuda_graph=True is not allowed: false: this machine has no CUDA GPU"
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not list(tmp_path.rglob("last.ckpt"))


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["trainer.accelerator=cpu"], "trainer.accelerator='cpu'"),
        (["trainer.on_nan=skip"], "trainer.on_nan='skip'"),
        (["trainer.precision=16-mixed"], "trainer.precision='16-mixed'"),
        (["trainer.precision=bf16-true"], "trainer.precision='bf16-true'"),
        (["trainer.compile=true"], "trainer.compile=True"),
        (["trainer.fast_path=false"], "trainer.fast_path=False"),
        (["trainer=ddp"], "trainer.strategy='gan_ddp'"),
        (["optimizer=sgd", "optimizer.d.momentum_final=0.7"], "optimizer.d.momentum_final=0.7"),
        (["optimizer.g.lr_final=0"], "optimizer.g.lr_final=0.0"),
    ],
)
def test_settings_a_captured_step_cannot_run_are_refused_with_their_name(overrides, named):
    from gan_lightning.config import to_config, validate
    from gan_lightning.errors import UserError
    from tests.helpers.hydra import compose_config

    with pytest.raises(UserError) as refused:
        validate(to_config(compose_config([*MLP, "trainer.cuda_graph=true", *overrides])))
    assert str(refused.value).startswith(f"{named} is not allowed: ") and "trainer.cuda_graph=true" in str(
        refused.value
    )
    validate(to_config(compose_config([*MLP, *overrides])))  # allowed without CUDA graphs
