"""Model records and deploys: a model deployed where it was trained is listed as serving (and only the artifact
that serves there now), and a deploy with nothing promoted names the environment promotions come from."""

from __future__ import annotations

import pytest

from jobs.config.environment import load_environment
from jobs.errors import FtopsError
from jobs.models import lifecycle
from jobs.models.record import Artifact, ModelRecord, Serving
from jobs.models.store import Conflict, RecordStore

JOB = "helpdesk-gpt41mini"


class MemoryRecords(RecordStore):
    """A record store in a dict, with the same conditional writes as the S3 and Blob stores."""

    location = "memory://"

    def __init__(self, env_name: str) -> None:
        super().__init__(env_name)
        self.objects: dict[str, tuple[bytes, str]] = {}

    def _read(self, key):
        return self.objects.get(key)

    def _write(self, key, data, etag):
        current = self.objects.get(key)
        if (etag is None and current is not None) or (etag is not None and (current is None or current[1] != etag)):
            raise Conflict("the model record changed while this command ran")
        tag = f"etag-{len(self.objects)}-{hash(data)}"
        self.objects[key] = (data, tag)
        return tag

    def _list(self, prefix):
        return [key for key in self.objects if key.startswith(prefix)]


def _record(env: str, model_id: str, **fields) -> ModelRecord:
    return ModelRecord(job=JOB, env=env, provider="azure-openai",
                       artifact=Artifact(kind="azure-model", model_id=model_id, source_resource_id="/sub/x"),
                       definition=f"definitions/{JOB}.yaml", definition_sha256="0" * 64, rendered_sha256="1" * 64,
                       base_model="gpt-4.1-mini@2025-04-14", **fields)


@pytest.fixture
def store(monkeypatch) -> MemoryRecords:
    records = MemoryRecords("local")
    monkeypatch.setattr(lifecycle, "store_for", lambda env, provider: records)
    return records


def _serving(store: MemoryRecords) -> dict[str, list[str]]:
    return {r.artifact.model_id: [s.where for s in r.serving] for r in store.records(JOB)}


def test_a_deploy_where_the_model_was_trained_marks_its_record_serving(store):
    env = load_environment("local")
    store.put(_record("local", "gpt-4.1-mini.ft-old", serving=[Serving(env="local", where="dep", at=1.0)]))
    store.put(_record("local", "gpt-4.1-mini.ft-new"))

    assert lifecycle.note_deployed(env, "azure-openai", JOB, "dep", "gpt-4.1-mini.ft-new")
    # The deployment now serves the new model: the old record no longer claims it.
    assert _serving(store) == {"gpt-4.1-mini.ft-old": [], "gpt-4.1-mini.ft-new": ["dep"]}
    since = next(r for r in store.records(JOB) if r.serving).serving[0].at
    assert lifecycle.note_deployed(env, "azure-openai", JOB, "dep", "gpt-4.1-mini.ft-new")
    assert next(r for r in store.records(JOB) if r.serving).serving[0].at == since  # the same deploy again

    # A checkpoint has no record of its own: no record claims the deployment any more.
    assert not lifecycle.note_deployed(env, "azure-openai", JOB, "dep", "ftchkpt-123")
    assert _serving(store) == {"gpt-4.1-mini.ft-old": [], "gpt-4.1-mini.ft-new": []}


def _local_staging(project, *, declared: bool) -> None:
    text = (project.root / "environments" / "local.yaml").read_text()
    (project.root / "environments" / "local-staging.yaml").write_text(
        text.replace("name: local\n", "name: local-staging\n").replace("ftops-local-rg", "ftops-localstaging-rg"))
    if declared:  # local promotes into local-staging, as staging lists prod
        project.edit_environment("local", "aws:\n", "aws:\n  promotion_targets: [local-staging]\n")
    load_environment.cache_clear()


@pytest.mark.parametrize("declared, command", [
    (True, "`ftops promote helpdesk-gpt41mini --from local --to local-staging`"),
    (False, "`ftops promote helpdesk-gpt41mini --from SOURCE --to local-staging`, SOURCE being where it was "
            "trained and approved"),
])
def test_nothing_promoted_names_where_promotions_come_from(project, store, declared, command):
    _local_staging(project, declared=declared)
    with pytest.raises(FtopsError) as refused:
        lifecycle.approved_record(load_environment("local-staging"), JOB, "azure-openai")
    assert str(refused.value) == f"no model record of {JOB} in local-staging: nothing was promoted here ({command})"


def test_an_unapproved_record_names_the_promotion_source_too(project, store):
    _local_staging(project, declared=True)
    store.put(_record("local-staging", "gpt-4.1-mini.ft-x"))
    with pytest.raises(FtopsError) as refused:
        lifecycle.approved_record(load_environment("local-staging"), JOB, "azure-openai")
    assert "is PendingManualApproval, not Approved" in str(refused.value)
    assert "`ftops promote helpdesk-gpt41mini --from local --to local-staging`" in str(refused.value)


def test_prod_names_the_source_its_reviewed_promotion_names(project, store):
    with pytest.raises(FtopsError) as refused:
        lifecycle.approved_record(load_environment("prod"), JOB, "azure-openai",
                                  {"environment": "staging", "job_name": "helpdesk-gpt41mini-staging-0123abcd"})
    assert "`ftops promote helpdesk-gpt41mini --from staging --to prod`" in str(refused.value)
