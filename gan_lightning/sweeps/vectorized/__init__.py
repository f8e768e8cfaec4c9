"""Seeds trained side by side (``hydra/launcher=vectorized``): the members' layers, the group's module, its data and
checkpoints (``group``), each member's run (``members``), and the launcher that forms groups from a sweep
(``launcher``)."""
