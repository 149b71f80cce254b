"""A large render spreads over processes and gives exactly what one process gives: files, order and errors."""

from __future__ import annotations

import pytest

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.render.engine import render_environment
from jobs.render.parallel import MIN_PARALLEL_JOBS, workers_for

SM, AZ = "helpdesk-qwen-lora", "helpdesk-gpt41mini"


@pytest.fixture
def many(project):
    """MIN_PARALLEL_JOBS + 8 definitions derived from both examples (names, seeds and epochs differ)."""
    examples = [project.definition(SM), project.definition(AZ)]
    for i in range(MIN_PARALLEL_JOBS + 8):
        data = examples[i % 2] | {"name": f"many-{i:03d}"}
        data["hyperparameters"] = data["hyperparameters"] | {"seed": i, "epochs": 1 + i % 3}
        project.write_definition(data)
    return project


def _render(workers: int):
    return render_environment(load_environment("local"), workers=workers)


def _error(workers: int) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        _render(workers)
    return err.value


def test_parallel_render_equals_the_single_process_render_byte_for_byte(many):
    assert workers_for(MIN_PARALLEL_JOBS + 10, 2) == 2  # this render does use a pool
    single, pooled = _render(1), _render(2)
    assert [job.name for job in pooled] == [job.name for job in single]
    assert [job.files for job in pooled] == [job.files for job in single]
    assert [job.index for job in pooled] == [job.index for job in single]
    late = next(job for job in pooled if job.index["job"] == "many-038")  # rendered in a worker
    assert late.variant.name == "many-038" and late.documents["ack.yaml"]["kind"] == "TrainingJob"


def test_parallel_render_reports_the_same_first_violation(many):
    for name in ("many-030", "many-012"):
        many.edit_definition(name, compute__instance_type="ml.p5.48xlarge")
    single, pooled = _error(1), _error(2)
    assert str(pooled) == str(single)
    assert single.source == "definitions/many-012.yaml" and single.field == "compute.instance_type"

    # A file that fails to load after the violation: the violation still comes first...
    many.edit_definition("many-020", hyperparameters__no_such_field=1)
    assert str(_error(2)) == str(_error(1)) == str(single)
    # ...and once the violations are fixed, the load error is what both report.
    for name in ("many-030", "many-012"):
        many.edit_definition(name, compute__instance_type="ml.g5.2xlarge")
    single, pooled = _error(1), _error(2)
    assert str(pooled) == str(single) and "many-020.yaml" in str(single) and "no_such_field" in str(single)


def test_small_renders_stay_in_process():
    assert workers_for(MIN_PARALLEL_JOBS - 1, 8) == 1
    assert workers_for(1000, 1) == 1
