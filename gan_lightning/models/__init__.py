"""Model families: each builds a generator and a discriminator sized from the data's sample shape.

``configs``: the ``model`` config group (settings, checks); ``dcgan``, ``mlp``, ``resnet``: the families' networks;
``generator``: G's base class; ``conditional``: labels into G and D; ``layers``: shared building blocks.
"""

from gan_lightning.models.configs import ModelConfig  # noqa: F401  (importing the options registers their schemas)
