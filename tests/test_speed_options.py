"""Switches that make training faster must not change what it computes."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.hydra import run_in_process

DCGAN = ["data.limit=512", "model.g_width=16", "model.d_width=16", "trainer.max_steps=5", "trainer.deterministic=true",
         "logger=none", "callbacks.progress_every_n_steps=0", "callbacks.samples_every_n_steps=0"]  # fmt: skip


def final_weights(tmp_path, name, *overrides):
    run_in_process([*DCGAN, *overrides], tmp_path / name)
    return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


LR, STEPS = 2e-4, 5  # DCGAN's Adam learning rate and its steps


def assert_same_training(a, b):
    """The weights of two DCGAN runs whose kernels sum in different orders are the same but for float rounding.

    Adam steps each element by about ±lr whatever the gradient's size (m/√v ≈ ±1), so a gradient at rounding level
    that changes sign moves a few elements by up to 2·lr a step; the mean difference stays at rounding level,
    far below the lr a step moves every element.
    """
    assert a.keys() == b.keys()
    for key in a:
        difference = (a[key].float() - b[key].float()).abs()
        assert difference.mean() < 1e-5 and difference.max() <= 2 * LR * STEPS, key


def built(*overrides):
    from gan_lightning.config import to_config
    from gan_lightning.runs.build import build_module
    from tests.helpers.hydra import compose_config

    return build_module(to_config(compose_config([*DCGAN, *overrides])))


def test_channels_last_is_the_default_and_trains_the_same_networks(tmp_path):
    def conv_weight(*overrides):
        return next(
            m for m in built(*overrides).discriminator.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1
        ).weight

    assert conv_weight().is_contiguous(memory_format=torch.channels_last) and not conv_weight().is_contiguous()
    assert conv_weight("trainer.channels_last=false").is_contiguous()
    plain = final_weights(tmp_path, "plain", "trainer.channels_last=false")
    nhwc = final_weights(tmp_path, "nhwc")
    assert_same_training(plain, nhwc)  # NHWC kernels sum in another order


def optimizer_checkpoint(tmp_path, name, *overrides):
    run_in_process([*DCGAN, *overrides], tmp_path / name)
    return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)


def fused_flags(checkpoint) -> list:
    """Whether D's and G's optimizers (in configure_optimizers' order) ran fused, as their checkpointed settings say."""
    return [state["param_groups"][0]["fused"] for state in checkpoint["optimizer_states"]]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fused_optimizers_are_the_default_and_take_the_same_steps(tmp_path, optimizer):
    fused = optimizer_checkpoint(tmp_path, "fused", f"optimizer={optimizer}")
    unfused = optimizer_checkpoint(
        tmp_path, "unfused", f"optimizer={optimizer}", "optimizer.g.fused=false", "optimizer.d.fused=false"
    )
    assert fused_flags(fused) == [True, True] and fused_flags(unfused) == [None, None]
    assert_same_training(fused["state_dict"], unfused["state_dict"])
    first_tensor_state = fused["optimizer_states"][0]["state"][0]
    assert (
        float(first_tensor_state["step" if optimizer == "adam" else "momentum_buffer"].abs().max()) > 0
    )  # real steps were taken


def test_gradients_clipped_in_mixed_precision_use_the_unfused_optimizer(tmp_path):
    # Lightning's mixed-precision plugin cannot clip the gradients of a fused optimizer; D's falls back, G's stays fused.
    checkpoint = optimizer_checkpoint(
        tmp_path, "clipped", "trainer.precision=bf16-mixed", "optimizer.d.grad_clip_norm=1.0"
    )
    assert fused_flags(checkpoint) == [None, True]
    assert checkpoint["global_step"] > 0


@pytest.mark.slow
def test_compiled_networks_train_the_same_networks(tmp_path):
    module = built("trainer.compile=true")
    assert module.generator._compiled_call_impl is not None and module.discriminator._compiled_call_impl is not None
    plain = final_weights(tmp_path, "plain")
    compiled = final_weights(tmp_path, "compiled", "trainer.compile=true")
    assert_same_training(plain, compiled)


def in_bfloat16(value: float) -> bool:
    return torch.tensor(value).bfloat16().item() == value


def test_bf16_mixed_computes_in_bfloat16_and_keeps_float32_weights(tmp_path):
    plain = run_in_process(DCGAN, tmp_path / "plain")["metrics"]
    mixed = run_in_process([*DCGAN, "trainer.precision=bf16-mixed"], tmp_path / "mixed")["metrics"]
    weights = torch.load(tmp_path / "mixed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}
    losses = ("loss/d", "loss/g")
    # Autocast ran the networks in bfloat16: the losses carry bfloat16's 8 significant bits, float32's do not.
    assert all(in_bfloat16(mixed[key]) for key in losses) and not all(in_bfloat16(plain[key]) for key in losses)
    for key in losses:
        # From the same weights, data and latents, within bfloat16's precision of the float32 run.
        assert mixed[key] == pytest.approx(plain[key], rel=0.03), key


def test_logging_only_at_logging_steps_keeps_every_logged_value(tmp_path):
    # Values are logged at the steps Lightning hands to loggers; the CSV log must hold every one of them.
    import csv

    run_in_process(["data=ring8", "model=mlp", "trainer.max_steps=95", "trainer.log_every_n_steps=10", "logger=csv",
                    "callbacks.progress_every_n_steps=0"], tmp_path)  # fmt: skip
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["loss/d"]]
    assert [int(row["step"]) for row in rows] == [*range(10, 95, 10), 95]  # every 10th step and the last
    assert all(row["grad_norm/d"] and row["grad_norm/g"] and row["lr/g"] for row in rows)
