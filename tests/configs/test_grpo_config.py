"""The grpo section's set-objective params: the max_at_k estimator and the k schedule, and their one-line errors."""

from __future__ import annotations

import pytest

from replyrl.configs.grpo import GRPOStageConfig, ObjectiveKStep
from replyrl.configs.loader import ConfigError, from_dict

MAX_AT_K_RUN = {"name": "max_at_k_run", "init": "polychromic", "objective": "max_at_k"}
POLYCHROMIC_RUN = {"name": "poly_run", "init": "polychromic", "objective": "polychromic"}
WHERE = "params.yaml: grpo"


def grpo(**values) -> GRPOStageConfig:
    return from_dict(GRPOStageConfig, values, WHERE)


def test_a_schedule_reads_from_the_params_file_and_the_default_changes_nothing():
    config = grpo(runs=[MAX_AT_K_RUN], num_generations=6, max_at_k_estimator="pkpo",
                  objective_k_schedule=[{"step": 0, "k": 4}, {"step": 20, "k": 1}])
    assert config.objective_k_schedule == [ObjectiveKStep(0, 4), ObjectiveKStep(20, 1)]
    default = GRPOStageConfig()  # the marginal advantage with a fixed k: the runs so far
    assert default.max_at_k_estimator == "marginal" and default.objective_k_schedule is None


@pytest.mark.parametrize(("values", "message"), [
    ({"max_at_k_estimator": "rloo", "runs": [MAX_AT_K_RUN]},
     "grpo.max_at_k_estimator: 'rloo' is not allowed; choose one of ('marginal', 'pkpo', 'verl_passk')"),
    # Like objective_threshold: an estimator no run uses is a mistake, not a no-op.
    ({"max_at_k_estimator": "pkpo"},
     "grpo.max_at_k_estimator: 'pkpo' is not allowed; only objective max_at_k has an estimator"),
    ({"objective_k_schedule": [{"step": 0, "k": 1}, {"step": 0, "k": 2}], "runs": [MAX_AT_K_RUN]},
     "grpo.objective_k_schedule: [0, 0] is not allowed; needs steps >= 0, increasing"),
    ({"objective_k_schedule": [], "runs": [MAX_AT_K_RUN]},
     "grpo.objective_k_schedule: [] is not allowed; needs steps >= 0, increasing"),
    # Each scheduled k in the objective's range: k = G would zero the marginal advantages...
    ({"objective_k_schedule": [{"step": 3, "k": 4}], "runs": [MAX_AT_K_RUN]},
     "grpo.objective_k_schedule[0].k: 4 is not allowed; must be in 1..num_generations - 1 (3) for objective max_at_k"),
    # ... and polychromic has no diversity at k = 1.
    ({"objective_k_schedule": [{"step": 0, "k": 2}, {"step": 5, "k": 1}], "runs": [POLYCHROMIC_RUN]},
     "grpo.objective_k_schedule[1].k: 1 is not allowed; must be in 2..num_generations - 1 (3)"),
    # verl_passk always takes the whole group's max: a schedule would change nothing.
    ({"objective_k_schedule": [{"step": 0, "k": 2}], "max_at_k_estimator": "verl_passk", "runs": [MAX_AT_K_RUN]},
     "grpo.objective_k_schedule: [0] is not allowed; no run of grpo.runs has a set objective with a k"),
    ({"objective_k_schedule": [{"step": 0, "k": 2}]},
     "grpo.objective_k_schedule: [0] is not allowed; no run of grpo.runs has a set objective with a k"),
    ({"objective_k_schedule": [{"step": "0", "k": 2}], "runs": [MAX_AT_K_RUN]},
     "params.yaml: grpo.objective_k_schedule[0].step: '0' is not allowed; expected int"),
])
def test_bad_estimator_or_schedule_gives_one_line(values: dict, message: str):
    with pytest.raises(ConfigError) as error:
        grpo(**values)
    assert message in str(error.value) and "\n" not in str(error.value)
