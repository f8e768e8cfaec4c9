"""The training step: the GAN module (Algorithm 1 and nothing else), how its steps run (eagerly, or captured as CUDA
graphs), what a non-finite loss does, the losses and objectives, the optimizers, the EMA of G, and what a
checkpoint holds of training's state."""
