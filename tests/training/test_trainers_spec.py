"""The method table (``trainers.spec``) is consistent with the code it names, and resolves
to the same defaults, option checks and training attacks as the tables it replaced."""

from __future__ import annotations

import dataclasses

import pytest

from semprobe import attacks
from semprobe import losses as semprobe_losses
from trainers import cli, config, methods, spec
from trainers.config import TrainConfig, resolve

ALL = spec.METHODS
SPAT = ("spat_madry", "spat_trades", "spat_mart")
SCARL_ONLY = ("base", "embedding", "nn_dim", "tau", "c", "centre_momentum", "lambda1", "lambda2", "ramp_epochs",
              "info", "no_info", "no_struc", "proj_dim")
#: trainers.config.OPTION_METHODS before the table (commit 67f2f66)
OLD_OPTION_METHODS = {
    "alpha": SPAT,
    "ls_parametrization": SPAT,
    "beta": ("trades", "mart", "scarl", "spat_trades", "spat_mart"),
    "steps": ("pgd_at", "trades", "mart", "tla", "scarl", *SPAT),
    "step_size": tuple(m for m in ALL if m != "rst")[1:],
    "random_start": tuple(m for m in ALL if m != "rst")[1:],
    **{name: ("tla",) for name in ("tla_margin", "tla_weight", "tla_pool", "tla_regularization")},
    **{name: ("scarl",) for name in SCARL_ONLY},
    # AWP (added after the table): every method with an adversarial loss of its own
    **{name: ("pgd_at", "trades", "mart", "scarl", *SPAT) for name in ("awp_gamma", "awp_warmup")},
}


def test_the_methods_are_the_ten_of_the_papers_in_order():
    """... and RST (SPAT Table 4's baseline with extra data), added after them."""
    assert ALL == ("natural", "fgsm", "pgd_at", "trades", "mart", "tla", "scarl", *SPAT, "rst")
    assert spec.SPAT_METHODS == SPAT


def test_every_step_function_exists_and_every_method_has_one():
    assert list(methods.METHOD_STEPS) == list(ALL)
    for name, entry in spec.METHOD_SPECS.items():
        assert entry.name == name
        step = methods.STEP_FUNCTIONS[entry.step]
        assert step is getattr(methods, entry.step) and methods.METHOD_STEPS[name] is step


def test_every_option_in_the_table_is_a_real_option_and_a_config_field():
    parameters = {param.name for param in cli.command.params}
    fields = {item.name for item in dataclasses.fields(TrainConfig)}
    for name in spec.OPTION_METHODS:
        assert name in parameters, name
        assert config.FLAG_FIELDS.get(name, name) in fields, name


def test_each_entry_agrees_with_itself():
    for name, entry in spec.METHOD_SPECS.items():
        assert entry.attack_loss in spec.ATTACK_LOSSES, name
        assert len(set(entry.options)) == len(entry.options), name
        assert ("beta" in entry.options) == (entry.beta is not None), name
        assert ("alpha" in entry.options) == (entry.attack_loss in (spec.PGD_LS, spec.KL_OR_LS)), name
        attacks_itself = entry.attack_loss not in (spec.NO_ATTACK, spec.FROM_BASE)
        assert (entry.random_start in spec.RANDOM_STARTS) == attacks_itself, name
        assert (entry.step_size is not None) == attacks_itself, name
        if entry.attack_loss == spec.NO_ATTACK:
            assert entry.options == (), name
        else:  # an attack: its step size and start can be set, its step count unless fixed
            assert {"step_size", "random_start"} <= set(entry.options), name
            assert ("steps" in entry.options) == (entry.steps is None), name
    for base in spec.SCARL_BASES:  # SCARL's attack is its base's, which must have its own
        assert spec.METHOD_SPECS[base].attack_loss != spec.FROM_BASE


def test_the_choices_repeated_for_a_light_command_line_are_semprobes():
    assert spec.RANDOM_STARTS == attacks.RANDOM_STARTS
    assert spec.LS_PARAMETRIZATIONS == semprobe_losses.LS_PARAMETRIZATIONS


def test_option_methods_are_the_old_table():
    """The old table, and rst (added since) takes the attack options, beta, SPAT's alpha and AWP."""
    without_rst = {name: tuple(m for m in users if m != "rst") for name, users in spec.OPTION_METHODS.items()}
    assert without_rst == OLD_OPTION_METHODS
    assert {name for name, users in spec.OPTION_METHODS.items() if "rst" in users} == {
        "steps", "step_size", "random_start", "beta", "alpha", "ls_parametrization", "awp_gamma", "awp_warmup"}


# (beta, steps, step size as a multiple of eps, random start) as trainers.config resolved them before the table
OLD_DEFAULTS = {
    "natural": (None, None, None, None),
    "fgsm": (None, 1, 1.25, "uniform"),
    "pgd_at": (None, 10, 0.25, "uniform"),
    "trades": (6.0, 10, 0.25, "normal"),
    "mart": (5.0, 10, 0.25, "normal"),
    "tla": (None, 10, 0.25, "uniform"),
    "scarl": (6.0, 10, 0.25, "normal"),  # --base trades
    "spat_madry": (None, 10, 0.25, "uniform"),
    "spat_trades": (6.0, 10, 0.25, "uniform"),
    "spat_mart": (5.0, 10, 0.25, "uniform"),
    "scarl --base pgd_at": (6.0, 10, 0.25, "uniform"),
    "scarl --base natural": (6.0, None, None, None),
}
SURROGATES = {"natural": None, "fgsm": attacks.CrossEntropy, "pgd_at": attacks.CrossEntropy,
              "trades": attacks.KLDivergence, "mart": attacks.CrossEntropy, "tla": attacks.CrossEntropy,
              "scarl": attacks.KLDivergence, "spat_madry": attacks.LabelSmoothed, "spat_trades": attacks.LabelSmoothed,
              "spat_mart": attacks.LabelSmoothed, "scarl --base pgd_at": attacks.CrossEntropy,
              "scarl --base natural": None}


@pytest.mark.parametrize("case", list(OLD_DEFAULTS))
def test_each_method_resolves_to_its_old_defaults_and_attack(case):
    method, *base = case.split(" --base ")
    given = {"dataset": "digits", "arch": "small_cnn", "out": "unused", "eps": "0.2"}
    if base:
        given["base"] = base[0]
    if method in SPAT:
        given["alpha"] = 0.3
    resolved = resolve(method, given)
    beta, steps, step_fraction, start = OLD_DEFAULTS[case]
    assert (resolved.beta, resolved.steps, resolved.random_start) == (beta, steps, start)
    assert resolved.step_size == (None if step_fraction is None else pytest.approx(step_fraction * 0.2))
    surrogate = methods.training_surrogate(resolved)
    expected = SURROGATES[case]
    assert surrogate is None if expected is None else type(surrogate) is expected
    if expected is attacks.LabelSmoothed:
        assert surrogate.alpha == 0.3


def test_a_preset_step_size_does_not_reach_the_single_fgsm_step():
    given = {"dataset": "digits", "arch": "small_cnn", "out": "unused", "preset": "scarl-cifar10"}
    assert resolve("fgsm", given).step_size == pytest.approx(1.25 * 8 / 255)
    assert resolve("pgd_at", given).step_size == pytest.approx(2 / 255)
