"""A large render spreads over processes and gives exactly what one process gives: files, order and errors."""

from __future__ import annotations

import pytest

from jobs.config.environment import load_environment
from jobs.errors import ConfigError
from jobs.render import policy
from jobs.render.definitions import find_definition, load_variants
from jobs.render.engine import render_batch, render_environment, render_environments
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


def test_several_environments_render_in_one_pool_as_they_do_one_by_one(many):
    envs = [load_environment(name) for name in ("local", "prod")]
    together = render_environments(envs, workers=2)
    for env in envs:
        alone = render_environment(env, workers=1)
        assert [job.files for job in together[env.name]] == [job.files for job in alone]


def test_each_job_of_a_batch_gets_the_error_a_job_by_job_render_gives_it(many, monkeypatch):
    """Phases run over the whole batch: a job failing an early phase must not hide an earlier job's failure in a
    later phase, and a failed job must not stop the others."""
    env = load_environment("local")
    variants = [v for name in ("many-000", "many-002", "many-004") for v in load_variants(find_definition(name), "local")]
    real_check_definition, real_check_request = policy.check_definition, policy.check_sagemaker_request

    def check_definition(variant, env, *environments):  # the prepare phase fails for the third job
        if variant.name == "many-004":
            raise variant.error("third job refused early", "compute.instance_type")
        real_check_definition(variant, env, *environments)

    def check_sagemaker_request(variant, request, tuning):  # the output checks fail for the first job
        if variant.name == "many-000":
            raise variant.error("first job refused late", "compute.instance_type")
        real_check_request(variant, request, tuning=tuning)

    monkeypatch.setattr(policy, "check_definition", check_definition)
    monkeypatch.setattr(policy, "check_sagemaker_request", check_sagemaker_request)
    first, second, third = render_batch(variants, env)
    assert isinstance(first, ConfigError) and "refused late" in str(first)
    assert second.index["job"] == "many-002"
    assert isinstance(third, ConfigError) and "refused early" in str(third)
    with pytest.raises(ConfigError, match="refused late"):  # in order, the first job's error comes first
        render_environment(env, workers=2)
