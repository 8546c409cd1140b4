"""The ML configuration objects are ffparam Settings: frozen, validated on construction,
strict ``from_dict``, round trip through ``to_dict``."""

from __future__ import annotations

import dataclasses

import pytest

from ffparam.errors import InputError
from ffparam.ml.descriptors import AEVSettings
from ffparam.ml.models.gp import GPSettings
from ffparam.ml.models.mace import MaceSettings
from ffparam.ml.training import TrainingSettings

ALL = [AEVSettings, GPSettings, MaceSettings, TrainingSettings]


@pytest.mark.parametrize("cls", ALL)
def test_round_trip_frozen_and_strict(cls):
    settings = cls()
    assert cls.from_dict(settings.to_dict()) == settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 3  # type: ignore[misc]
    with pytest.raises(InputError, match="unknown option"):
        cls.from_dict({"no_such_option": 1})


@pytest.mark.parametrize("cls, values, message", [
    (GPSettings, {"length_scale": 0.0}, "length_scale must be positive"),
    (GPSettings, {"force_noises": []}, "force_noises must be positive numbers"),
    (GPSettings, {"n_inducing": 0}, "n_inducing must be at least 1"),
    (TrainingSettings, {"batch_size": 0}, "batch_size must be at least 1"),
    (TrainingSettings, {"dtype": "float16"}, "dtype must be one of"),
    (TrainingSettings, {"time_budget_s": -1.0}, "time_budget_s must be positive"),
    (MaceSettings, {"r_max": -5.0}, "r_max must be positive"),
    (MaceSettings, {"threads": 0}, "threads must be at least 1"),
    (AEVSettings, {"radial_cutoff": 0.0}, "radial_cutoff must be positive"),
    (AEVSettings, {"angular_shifts": []}, "angular_shifts must not be empty"),
])
def test_bad_values_are_one_input_error(cls, values, message):
    with pytest.raises(InputError, match=message):
        cls.from_dict(values)


def test_lists_from_json_become_tuples():
    gp = GPSettings.from_dict({"length_scales": [1, 2.5]})
    assert gp.length_scales == (1, 2.5)
    aev = AEVSettings(radial_shifts=[1, 2])
    assert aev.radial_shifts == (1.0, 2.0) and hash(aev)
