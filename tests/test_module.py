"""The D/G loop: update counts per step, which network each update moves, simultaneous updates, and what is logged."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import HalfPrecision, MixedPrecision

import gan_lightning
from gan_lightning.adapter.fastpath import direct_updates_possible
from gan_lightning.config import to_config
from gan_lightning.data.batches import TensorBatches
from gan_lightning.runs.build import build_datamodule, build_module, build_trainer
from gan_lightning.runs.context import RunContext
from gan_lightning.training.losses import batch_coupled
from gan_lightning.training.module import GAN
from tests.helpers.hydra import compose_config

TOY = [
    "data=ring8",
    "model=mlp",
    "logger=none",
    "callbacks.progress_every_n_steps=0",
    "callbacks.samples_every_n_steps=0",
]


def fit(tmp_path, *overrides, callbacks=(), module_class=GAN, before_fit=lambda trainer, datamodule: None):
    """Trains the toy GAN; ``before_fit(trainer, datamodule)`` may change either before training starts."""
    cfg = to_config(compose_config([*TOY, *overrides]))
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule, module = build_datamodule(cfg), build_module(cfg, module_class)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    trainer = build_trainer(cfg, RunContext(tmp_path, name="test"))
    trainer.callbacks[:0] = callbacks  # first: they see each step before the periodic callbacks act on it
    before_fit(trainer, datamodule)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, before


def adam_steps(optimizer) -> set:
    return {int(state["step"]) for state in optimizer.state.values()}


@pytest.mark.parametrize("d_steps,g_steps", [(1, 1), (3, 1), (2, 2)])
def test_each_training_step_makes_d_steps_then_g_steps_updates(tmp_path, d_steps, g_steps):
    module, trainer, _ = fit(
        tmp_path, "trainer.max_steps=7", f"trainer.d_steps={d_steps}", f"trainer.g_steps={g_steps}"
    )
    d_optimizer, g_optimizer = trainer.optimizers
    assert module.steps_done == 7
    assert adam_steps(d_optimizer) == {7 * d_steps}
    assert adam_steps(g_optimizer) == {7 * g_steps}
    # Lightning counts every optimizer step; the run's own step count is the number of iterations.
    assert trainer.global_step == 7 * (d_steps + g_steps)


def test_each_d_update_gets_its_own_real_minibatch(tmp_path):
    cfg = to_config(compose_config([*TOY, "trainer.d_steps=3", "data.batch_size=20"]))
    batches = build_datamodule(cfg)
    batches.setup("fit")
    batch = next(iter(batches.train_dataloader()))
    assert batch.shape == (60, 2)
    assert len({tuple(row.tolist()) for row in batch}) == 60  # three different minibatches of 20


def test_a_frozen_optimizer_leaves_its_network_unchanged_and_the_other_moves(tmp_path):
    module, _, before = fit(tmp_path, "trainer.max_steps=3", "optimizer.g.lr=1e-30")
    changed = {name: not torch.allclose(p, before[name]) for name, p in module.named_parameters()}
    assert any(v for n, v in changed.items() if n.startswith("discriminator."))
    assert not any(v for n, v in changed.items() if n.startswith("generator."))


def test_generator_updates_raise_d_of_g_z_against_a_fixed_discriminator(tmp_path):
    # D frozen (lr ≈ 0): G's non-saturating updates must push D(G(z)) up on fresh latents.
    module, _, _ = fit(
        tmp_path / "a", "trainer.max_steps=1", "optimizer.d.lr=1e-30", "callbacks.checkpoint_every_n_steps=0"
    )
    z = module.generator.sample_latent(512, generator=torch.Generator().manual_seed(1))
    module.eval()
    start = torch.sigmoid(module.discriminator(module.generator(z))).mean()
    module2, _, _ = fit(tmp_path / "b", "trainer.max_steps=100", "optimizer.d.lr=1e-30", "optimizer.g.lr=0.01")
    module2.eval()
    end = torch.sigmoid(module2.discriminator(module2.generator(z))).mean()
    assert end > start + 0.2


def test_logged_values_are_the_documented_keys_with_probabilities_for_d(tmp_path):
    _, trainer, _ = fit(tmp_path, "trainer.max_steps=5")
    metrics = trainer.callback_metrics
    assert {"loss/d", "loss/g", "d/real", "d/fake"} <= set(metrics)
    for key in ("d/real", "d/fake"):
        assert 0.0 < float(metrics[key]) < 1.0


def test_batch_norm_in_d_scores_fakes_the_same_way_in_both_updates(tmp_path):
    # With batch norm in D, a fake-only batch would be normalised by statistics D never trained on.
    cfg = to_config(compose_config(["data=fashion_mnist", "data.limit=256", "model=dcgan", "logger=none"]))
    module = build_module(cfg)
    assert batch_coupled(module.discriminator)
    cfg = to_config(compose_config([*TOY, "model.d_spectral_norm=true"]))
    assert not batch_coupled(build_module(cfg).discriminator)


class CountsUpdateHooks(pl.Callback):
    """Implements hooks that Lightning's backward and optimizer step call: the module must keep calling them."""

    def __init__(self):
        self.after_backward = self.before_optimizer_step = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.after_backward += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.before_optimizer_step += 1


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_direct_updates_skip_only_hooks_nobody_implements(tmp_path, precision):
    settings = ["trainer.max_steps=25", "trainer.d_steps=2", f"trainer.precision={precision}"]
    direct, direct_trainer, _ = fit(tmp_path / "direct", *settings)
    counter = CountsUpdateHooks()
    wrapped, wrapped_trainer, _ = fit(tmp_path / "wrapped", *settings, callbacks=[counter])
    assert direct.direct_updates and not wrapped.direct_updates
    assert counter.after_backward == counter.before_optimizer_step == 25 * 3  # 2 D updates and 1 G update per step
    # Lightning's count of optimizer steps (what checkpoints and loggers read) goes on in both.
    assert direct_trainer.global_step == wrapped_trainer.global_step == 25 * 3
    for key, value in wrapped.state_dict().items():
        assert torch.equal(direct.state_dict()[key], value), key


@pytest.mark.parametrize("plugin", [
    MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu")),  # scales the loss, unscales before the step
    MixedPrecision("bf16-mixed", "cpu"),  # autocast alone
    HalfPrecision("bf16-true"),  # holds the networks in bfloat16
], ids=["16-mixed", "bf16-mixed", "bf16-true"])  # fmt: skip
def test_updates_go_through_lightning_where_its_precision_plugin_acts_on_them(plugin):
    trainer = pl.Trainer(
        accelerator="cpu", plugins=[plugin], logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    module = build_module(to_config(compose_config(TOY)))
    assert direct_updates_possible(trainer, module) is (plugin.precision == "bf16-mixed")


class RecordsBatches(pl.Callback):
    def __init__(self):
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append(batch)


class HalvesBatches(GAN):
    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return batch * 0.5


@pytest.fixture
def served_batches(monkeypatch):
    """Every batch the in-memory data yields, in order."""
    served, serve = [], TensorBatches.__iter__

    def recording(self):
        for batch in serve(self):
            served.append(batch)
            yield batch

    monkeypatch.setattr(TensorBatches, "__iter__", recording)
    return served


@pytest.fixture
def batch_hook_calls(monkeypatch):
    """The names of the batch hooks Lightning dispatches (all three go through _call_batch_hook)."""
    calls, dispatch = [], pl.LightningModule._call_batch_hook

    def counting(self, hook_name, *args):
        calls.append(hook_name)
        return dispatch(self, hook_name, *args)

    monkeypatch.setattr(pl.LightningModule, "_call_batch_hook", counting)
    return calls


def test_batches_on_the_device_reach_the_step_as_served(tmp_path, served_batches, batch_hook_calls):
    received = RecordsBatches()
    module, _, _ = fit(tmp_path, "trainer.max_steps=5", callbacks=[received])
    assert module.batches_unchanged and batch_hook_calls == []
    assert len(received.batches) == 5
    assert all(batch is served for batch, served in zip(received.batches, served_batches))


def test_an_implemented_batch_hook_still_runs_on_every_batch(tmp_path, served_batches, batch_hook_calls):
    received = RecordsBatches()
    module, _, _ = fit(tmp_path, "trainer.max_steps=5", callbacks=[received], module_class=HalvesBatches)
    assert not module.batches_unchanged
    assert batch_hook_calls == ["on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"] * 5
    assert len(received.batches) == 5
    assert all(torch.equal(batch, served * 0.5) for batch, served in zip(received.batches, served_batches))


def test_a_batch_elsewhere_is_moved_to_the_device_even_without_batch_hooks():
    module = build_module(to_config(compose_config(TOY)))
    module.batches_unchanged = True
    pair = (torch.randn(4, 2), torch.arange(4))
    assert module._apply_batch_transfer_handler(pair, torch.device("cpu")) is pair
    # The meta device stands for a GPU: the batch is moved as Lightning moves any batch.
    moved = module._apply_batch_transfer_handler(pair, torch.device("meta"))
    assert [t.device.type for t in moved] == ["meta", "meta"] and moved[0].shape == (4, 2)


def test_lightnings_import_setting_of_the_nvml_cuda_check_is_undone_for_training(tmp_path):
    import os

    from gan_lightning.adapter import runtime

    assert runtime._value_before_lightning != "1"  # this test process does not ask for NVML checks itself
    os.environ[runtime.NVML_CUDA_CHECK] = "1"  # as importing Lightning leaves it
    fit(tmp_path, "trainer.max_steps=2")
    assert os.environ.get(runtime.NVML_CUDA_CHECK) == runtime._value_before_lightning


class RecordsFirstStep(pl.Callback):
    """Keeps G and D as they were before training, the first real batch and the first latents drawn,
    and counts G's and D's forward passes inside training steps."""

    def __init__(self):
        self.forwards = {"generator": 0, "discriminator": 0}
        self.latents, self.in_step = [], False

    def on_train_start(self, trainer, module) -> None:
        self.generator, self.discriminator = copy.deepcopy(module.generator), copy.deepcopy(module.discriminator)
        draw = module.generator.sample_latent
        module.generator.sample_latent = lambda n, **kw: self.keep_latents(draw(n, **kw))
        for name in self.forwards:
            getattr(module, name).register_forward_hook(lambda *_, name=name: self.count(name))

    def keep_latents(self, z):
        if self.in_step:
            self.latents.append(z)
        return z

    def count(self, name: str) -> None:
        self.forwards[name] += self.in_step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.in_step = True
        if batch_idx == 0:
            self.real = batch.clone()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.in_step = False


SGD = [
    "optimizer=sgd",
    "optimizer.d.lr=0.1",
    "optimizer.g.lr=0.1",
    "optimizer.d.momentum=0.0",
    "optimizer.g.momentum=0.0",
]


@pytest.mark.parametrize("objective", ["nonsaturating", "relativistic"])
def test_simultaneous_updates_take_both_gradients_at_the_same_point(tmp_path, objective):
    # With plain SGD each network moves by -lr × its gradient; both gradients are those of one forward pass
    # of the networks as they were: G's is not taken against the D that D's update produced.
    record = RecordsFirstStep()
    module, _, _ = fit(
        tmp_path / "simultaneous",
        "trainer.max_steps=1",
        f"objective={objective}",
        "trainer.updates=simultaneous",
        *SGD,
        callbacks=[record],
    )
    assert len(record.latents) == 1  # one fake batch serves both updates
    generator, discriminator = record.generator, record.discriminator
    fake = generator(record.latents[0])
    real_out, fake_out = discriminator(torch.cat([record.real, fake])).chunk(2)
    d_grads = torch.autograd.grad(
        module.objective.d_loss(real_out, fake_out), list(discriminator.parameters()), retain_graph=True
    )
    g_grads = torch.autograd.grad(module.objective.g_loss(fake_out, real_out), list(generator.parameters()))
    for network, before, grads in (
        (module.discriminator, discriminator, d_grads),
        (module.generator, generator, g_grads),
    ):
        for after, start, grad in zip(network.parameters(), before.parameters(), grads):
            assert torch.allclose(after, start - 0.1 * grad, atol=1e-6)
    # Algorithm 1 from the same start takes G's gradient against the updated D: another G.
    alternating, _, _ = fit(tmp_path / "alternating", "trainer.max_steps=1", f"objective={objective}", *SGD)
    assert all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(alternating.discriminator.parameters(), module.discriminator.parameters())
    )
    assert not all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(alternating.generator.parameters(), module.generator.parameters())
    )


@pytest.mark.parametrize("g_fakes,draws", [("reuse", 1), ("fresh", 2)])
@pytest.mark.parametrize("objective", ["nonsaturating", "relativistic"])
def test_g_update_takes_its_gradient_against_the_updated_d_on_the_fakes_its_setting_names(
    tmp_path, objective, g_fakes, draws
):
    # With plain SGD: D' = D - lr ∇D's loss on G(z1); then G moves by -lr ∇G's loss against D', on G(z1) again
    # (reuse) or on G(z2) from a second draw (fresh, Algorithm 1).
    record = RecordsFirstStep()
    module, _, _ = fit(
        tmp_path,
        "trainer.max_steps=1",
        f"objective={objective}",
        f"trainer.g_fakes={g_fakes}",
        *SGD,
        callbacks=[record],
    )
    assert len(record.latents) == draws
    generator, discriminator = record.generator, record.discriminator
    with torch.no_grad():
        first_fakes = generator(record.latents[0])
    real_out, fake_out = discriminator(torch.cat([record.real, first_fakes])).chunk(2)
    d_grads = torch.autograd.grad(module.objective.d_loss(real_out, fake_out), list(discriminator.parameters()))
    with torch.no_grad():
        for parameter, grad in zip(discriminator.parameters(), d_grads):
            parameter -= 0.1 * grad
    for after, updated in zip(module.discriminator.parameters(), discriminator.parameters()):
        assert torch.allclose(after, updated, atol=1e-6)
    real_out, fake_out = discriminator(torch.cat([record.real, generator(record.latents[-1])])).chunk(2)
    g_grads = torch.autograd.grad(module.objective.g_loss(fake_out, real_out), list(generator.parameters()))
    for after, start, grad in zip(module.generator.parameters(), generator.parameters(), g_grads):
        assert torch.allclose(after, start - 0.1 * grad, atol=1e-6)


@pytest.mark.parametrize(
    "updates,g_fakes,g_forwards,d_forwards",
    [("alternating", "fresh", 2, 2), ("alternating", "reuse", 1, 2), ("simultaneous", "fresh", 1, 1)],
)
def test_reused_fakes_and_simultaneous_updates_save_forward_passes(tmp_path, updates, g_fakes, g_forwards, d_forwards):
    record = RecordsFirstStep()
    fit(tmp_path, "trainer.max_steps=6", f"trainer.updates={updates}", f"trainer.g_fakes={g_fakes}", callbacks=[record])
    assert record.forwards == {"generator": 6 * g_forwards, "discriminator": 6 * d_forwards}


def test_simultaneous_updates_with_several_d_steps_share_the_last_one(tmp_path):
    module, trainer, _ = fit(tmp_path, "trainer.max_steps=4", "trainer.d_steps=3", "trainer.updates=simultaneous")
    d_optimizer, g_optimizer = trainer.optimizers
    assert adam_steps(d_optimizer) == {12} and adam_steps(g_optimizer) == {4}


def test_logged_values_reach_the_loggers_at_lightnings_steps_and_the_callback_metrics(tmp_path):
    import csv

    overrides = [o for o in TOY if not o.startswith("logger=")]
    cfg = to_config(
        compose_config(
            [*overrides, "logger=csv", "trainer.max_steps=12", "trainer.log_every_n_steps=5", "optimizer.d.lr=0.0003"]
        )
    )
    pl.seed_everything(cfg.seed, verbose=False)
    trainer = build_trainer(cfg, RunContext(tmp_path, name="test"))
    trainer.fit(build_module(cfg), datamodule=build_datamodule(cfg))
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["loss/d"]]
    # Each step's number (training step N at N) and the epoch column; every 5th step and the last.
    assert [int(row["step"]) for row in rows] == [5, 10, 12]
    assert [int(row["epoch"]) for row in rows] == [0, 0, 0]
    assert len({row["loss/d"] for row in rows}) == 3  # each row holds its own step's values
    keys = ("loss/d", "loss/g", "d/real", "d/fake", "grad_norm/d", "grad_norm/g", "lr/d", "lr/g")
    for key in keys:
        assert float(rows[-1][key]) == pytest.approx(float(trainer.callback_metrics[key]), rel=1e-6), key
    assert float(rows[-1]["lr/d"]) == pytest.approx(0.0003)


def test_attribute_assignment_keeps_torchs_rules_for_parameters_buffers_and_submodules():
    # GAN skips nn.Module's checks only for plain values replacing plain attributes: the same sequence of
    # assignments must leave a GAN exactly as it leaves a plain LightningModule.
    cfg = to_config(compose_config(TOY))

    def assign(module):
        module.steps_done = 3
        module.steps_done += 1
        module.note = "text"
        module.extra = torch.nn.Parameter(torch.ones(2))
        module.extra = None  # a registered parameter stays registered, as None
        module.register_buffer("counts", torch.zeros(3))
        module.counts = torch.ones(3)  # a tensor assigned to a buffer's name replaces the buffer
        module.head = torch.nn.Linear(2, 1)
        module.flag = torch.tensor(1.0)  # a tensor under a new name is a plain attribute
        module.flag = 2.0
        return module

    gan = assign(build_module(cfg))
    reference = assign(pl.LightningModule())
    for name in ("steps_done", "note", "flag"):
        assert getattr(gan, name) == getattr(reference, name)
    assert gan.steps_done == 4 and gan.flag == 2.0 and type(gan.flag) is float
    assert gan._parameters["extra"] is None and "extra" not in gan.__dict__
    assert torch.equal(gan._buffers["counts"], torch.ones(3)) and "counts" not in gan.__dict__
    assert gan._modules["head"] is not None and "head" in dict(gan.named_children())
    own = {k for k in gan.state_dict() if not k.startswith(("generator.", "discriminator."))}
    assert own == set(reference.state_dict()) == {"counts", "head.weight", "head.bias"}


class RecordsWhetherDNeedsGradients(pl.Callback):
    """At each of D's forward passes: whether its parameters need gradients."""

    def __init__(self):
        self.needs_gradients = []

    def on_train_start(self, trainer, module) -> None:
        discriminator = module.discriminator
        discriminator.register_forward_pre_hook(
            lambda *_: self.needs_gradients.append([p.requires_grad for p in discriminator.parameters()])
        )


@pytest.mark.parametrize("g_steps", [1, 2])
def test_d_is_frozen_for_gs_updates_only(tmp_path, g_steps):
    record = RecordsWhetherDNeedsGradients()
    module, _, _ = fit(tmp_path, "trainer.max_steps=3", f"trainer.g_steps={g_steps}", callbacks=[record])
    every = [all(flags) for flags in record.needs_gradients]
    none = [not any(flags) for flags in record.needs_gradients]
    # Per step: D's update (needs gradients), then g_steps G updates (D frozen); the end-of-run sample
    # grid scores nothing with D.
    assert every == ([True] + [False] * g_steps) * 3
    assert none == ([False] + [True] * g_steps) * 3
    assert all(p.requires_grad for p in module.discriminator.parameters())


def test_frozen_parameters_get_no_gradient_and_keep_their_own_setting_after():
    from gan_lightning.training.module import frozen

    network, already_fixed = torch.nn.Linear(2, 1), torch.nn.Parameter(torch.ones(1), requires_grad=False)
    x = torch.randn(4, 2, requires_grad=True)
    with frozen([network.weight, network.bias, already_fixed]):
        (network(x).sum() * already_fixed).sum().backward()
    assert network.weight.grad is None and network.bias.grad is None and x.grad is not None
    assert network.weight.requires_grad and network.bias.requires_grad and not already_fixed.requires_grad


# The conversions that read a tensor's value on the host: on a GPU, each waits for the queue to drain.
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__")


@pytest.fixture
def framework_host_reads(monkeypatch):
    """The number of host reads the framework's own code (gan_lightning/) has made so far."""
    reads = {"count": 0}
    package = str(Path(gan_lightning.__file__).parent)

    for name in HOST_READS:

        def counting(self, *args, _read=getattr(torch.Tensor, name)):
            if sys._getframe(1).f_code.co_filename.startswith(package):
                reads["count"] += 1
            return _read(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return reads


class HostReadsPerStep(pl.Callback):
    def __init__(self, reads):
        self.reads, self.per_step = reads, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.start = self.reads["count"]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.per_step.append(self.reads["count"] - self.start)


def test_steps_that_neither_log_nor_check_read_nothing_from_the_device(tmp_path, framework_host_reads):
    per_step = HostReadsPerStep(framework_host_reads)
    module, _, _ = fit(tmp_path, "trainer.max_steps=30", "trainer.log_every_n_steps=10", callbacks=[per_step])
    # Steps 10, 20 and 30 log (one read of the logged values) and check the losses since the last check (one
    # read); the 27 others leave their losses on the device.
    assert [step for step, reads in enumerate(per_step.per_step, 1) if reads] == [10, 20, 30]
    assert all(per_step.per_step[step - 1] == 2 for step in (10, 20, 30))
    assert module.nonfinite.pending == []


def test_on_nan_skip_reads_every_loss_before_its_update(tmp_path, framework_host_reads):
    # Dropping an update needs its loss's value before the step: one read per update.
    per_step = HostReadsPerStep(framework_host_reads)
    fit(
        tmp_path,
        "trainer.max_steps=6",
        "trainer.log_every_n_steps=10",
        "trainer.on_nan=skip",
        "trainer.d_steps=2",
        callbacks=[per_step],
    )
    assert per_step.per_step[:5] == [3] * 5
