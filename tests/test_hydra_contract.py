"""What gan_lightning reads of Hydra's command line (gan_lightning/adapter/hydra_cli.py) against the installed Hydra:
its flags as Hydra's own parser declares them, and the words of its composition errors as Hydra raises them. A Hydra
upgrade that changes either fails here, not in a user's message."""

from __future__ import annotations

import pytest
from hydra._internal.utils import get_args_parser
from hydra.errors import ConfigCompositionException, MissingConfigException

from gan_lightning.adapter import hydra_cli
from gan_lightning.config import compose


def hydra_flags():
    """Each option string of Hydra's parser with how many values it takes (argparse's nargs)."""
    return {flag: action.nargs for action in get_args_parser()._actions for flag in action.option_strings}


def test_every_flag_of_hydra_is_known_with_whether_a_value_follows_it():
    flags = hydra_flags()
    assert set(flags) == hydra_cli.FLAGS | hydra_cli.FLAGS_WITH_VALUE
    assert {flag for flag, nargs in flags.items() if nargs is None} == hydra_cli.FLAGS_WITH_VALUE
    assert {flag for flag, nargs in flags.items() if nargs in (0, "?")} == hydra_cli.FLAGS
    info = next(action for action in get_args_parser()._actions if "--info" in action.option_strings)
    assert set(info.choices) == hydra_cli.INFO_TOPICS and set(info.option_strings) == set(hydra_cli.MODES["--info"])
    for mode, spellings in hydra_cli.MODES.items():
        assert mode in spellings and set(spellings) <= set(flags)


def test_flags_anywhere_are_put_before_the_overrides_with_their_values():
    argv = ["a=1", "-m", "b=2", "--cfg", "job", "-i", "plugins", "c=3"]
    assert hydra_cli.hydra_argv(argv) == ["-m", "--cfg", "job", "-i", "plugins", "a=1", "b=2", "c=3"]
    assert hydra_cli.split_argv(argv) == (["a=1", "b=2", "plugins", "c=3"], True)


def composition_error(overrides):
    with pytest.raises((ConfigCompositionException, MissingConfigException)) as raised:
        compose(overrides, with_hydra=True)
    return raised.value


def test_the_words_of_hydras_composition_errors_are_read_as_hydra_writes_them():
    assert hydra_cli.missing_option(composition_error(["model=nosuch"])) == ("model", "nosuch")
    assert hydra_cli.adds_existing_key(composition_error(["+trainer.max_steps=3"]))
    assert not hydra_cli.adds_existing_key(composition_error(["trainer.max_steps=many"]))
    assert hydra_cli.expected_type(composition_error(["trainer.max_steps=many"]).__cause__) == "Integer"
    assert hydra_cli.expected_type(composition_error(["trainer.compile=maybe"]).__cause__) == "Boolean"
    assert hydra_cli.names_a_list(composition_error(["augment=diffaug", "augment.policy=color"]).__cause__)
    overrides = ["data=ring8", "model=mlp", "model.depth=3"]
    assert hydra_cli.override_at_fault(composition_error(overrides), overrides) == "model.depth=3"
    overrides = ["model=mlp", "+model.latent_dim=3"]
    assert hydra_cli.override_at_fault(composition_error(overrides), overrides) == "+model.latent_dim=3"
