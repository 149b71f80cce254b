"""SageMaker hyperparameter tuning jobs, from rendered `create_hyper_parameter_tuning_job` requests.

Same cloud, ledger, uploads and trial metrics as training jobs (it extends the SageMaker provider); the job is
the tuning job, and what it yields is its best training job by the objective metric. In emulated environments
(moto runs nothing and names a placeholder best job) the trials really train with the local runner
(`jobs.runlocal.tuning`), and its record is what `describe` reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs.errors import CloudError
from jobs.providers import register
from jobs.providers.base import JobEvent, JobStatus, Metrics
from jobs.providers.sagemaker import SageMaker, _iso, _no_job, _not_found, client, describe_job, key_tag

if TYPE_CHECKING:
    from jobs.apply.rendered import RenderedJob
    from jobs.config.environment import Environment

STATES = {"InProgress": "running", "Completed": "succeeded", "Failed": "failed", "Stopping": "running",
          "Stopped": "cancelled", "Deleting": "running", "DeleteFailed": "failed"}


@register
class SageMakerTuning(SageMaker):
    name = "sagemaker-tuning"
    target = "sagemaker-tuning"

    job_name_field = "HyperParameterTuningJobName"

    # --- submit (the inherited `submit`, with these two steps) -----------------------------------

    def _create(self, sm: Any, request: dict[str, Any]) -> None:
        sm.create_hyper_parameter_tuning_job(**request)

    def _run_locally(self, env: Environment, request: dict[str, Any], options: dict[str, Any]) -> None:
        from jobs.runlocal import tuning

        tuning.run(env, request, max_steps=options.get("local_max_steps"), trials=options.get("local_trials"))

    def find(self, env: Environment, job: RenderedJob) -> tuple[str, str | None] | None:
        sm = client(env)
        name = job.load_target(self.target)["HyperParameterTuningJobName"]
        try:
            described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
        return name, key_tag(sm, described["HyperParameterTuningJobArn"])

    def key_of(self, env: Environment, job_id: str) -> str | None:
        """The key tag of the tuning job (not of a training job: the inherited lookup would find none)."""
        return key_tag(client(env), self._tuning(env, job_id)["HyperParameterTuningJobArn"])

    # --- watch ----------------------------------------------------------------------------------

    def _tuning(self, env: Environment, job_id: str) -> dict[str, Any]:
        return describe_job("tuning", job_id, lambda: client(env).describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=job_id))

    def _local(self, env: Environment, tuning: dict[str, Any]) -> dict[str, Any] | None:
        if not env.emulated:
            return None
        from jobs.runlocal import tuning as local_tuning

        return local_tuning.read(client(env, "s3"), tuning)

    def best(self, env: Environment, job_id: str) -> dict[str, Any] | None:
        """The best training job by the objective metric: name, objective value, tuned hyperparameters."""
        tuning = self._tuning(env, job_id)
        local = self._local(env, tuning)
        objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        if local is not None:
            trial = next((t for t in local["trials"] if t["name"] == local.get("best_training_job")), None)
            if trial is None:
                return None
            return {"training_job": trial["name"], "metric": objective["MetricName"], "goal": objective["Type"],
                    "value": trial["objective"], "hyperparameters": trial["hyperparameters"]}
        best = tuning.get("BestTrainingJob")
        if env.emulated or not best or not best.get("TrainingJobName"):
            return None  # moto's BestTrainingJob is a placeholder naming no real job
        final = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        return {"training_job": best["TrainingJobName"], "metric": final.get("MetricName", objective["MetricName"]),
                "goal": objective["Type"], "value": final.get("Value"),
                "hyperparameters": best.get("TunedHyperParameters", {})}

    def trials(self, env: Environment, job_id: str) -> list[dict[str, Any]]:
        """Every training job the tuning job launched, with its status and objective value."""
        tuning = self._tuning(env, job_id)
        local = self._local(env, tuning)
        if local is not None:
            return [{"training_job": t["name"], "status": t["status"], "objective": t["objective"],
                     "hyperparameters": t["hyperparameters"], "failure_reason": t.get("failure_reason")}
                    for t in local["trials"]]
        out: list[dict[str, Any]] = []
        if env.emulated:  # moto implements no ListTrainingJobsForHyperParameterTuningJob; nothing ran locally
            return out
        paginator = client(env).get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
        for page in paginator.paginate(HyperParameterTuningJobName=job_id):
            for summary in page["TrainingJobSummaries"]:
                final = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
                out.append({"training_job": summary["TrainingJobName"], "status": summary["TrainingJobStatus"],
                            "objective": final.get("Value"), "hyperparameters": summary.get("TunedHyperParameters", {}),
                            "failure_reason": summary.get("FailureReason")})
        return out

    def describe(self, env: Environment, job_id: str) -> JobStatus:
        tuning = self._tuning(env, job_id)
        local = self._local(env, tuning)
        provider_status = local["status"] if local else tuning["HyperParameterTuningJobStatus"]
        status = JobStatus(
            provider=self.name, job_id=job_id, name=job_id, state=STATES.get(provider_status, "pending"),
            provider_status=provider_status, failure_reason=(local or {}).get("failure_reason")
            or tuning.get("FailureReason") or None, created_at=_iso(tuning.get("CreationTime")),
            finished_at=(local or {}).get("finished_at") or _iso(tuning.get("HyperParameterTuningEndTime")),
            spot=bool(tuning["TrainingJobDefinition"].get("EnableManagedSpotTraining")))
        if local:
            finished = sum(t["status"] in {"Completed", "Failed"} for t in local["trials"])
            status.secondary_status = f"{finished}/{local['planned_trials']} trials"
        else:
            counters = tuning.get("TrainingJobStatusCounters", {})
            status.secondary_status = f"{counters.get('Completed', 0)} trials completed"
        if status.done or local:
            best = self.best(env, job_id)
            if best:
                trial = super().describe(env, best["training_job"])
                status.metrics, status.model, status.step, status.epoch = (trial.metrics, trial.model, trial.step,
                                                                           trial.epoch)
                if best["value"] is not None:
                    status.metrics[best["metric"]] = best["value"]
                status.secondary_status += f"; best {best['training_job']}"
        return status

    def list(self, env: Environment, limit: int = 50) -> list[JobStatus]:
        out = []
        pages = client(env).get_paginator("list_hyper_parameter_tuning_jobs").paginate(
            SortBy="CreationTime", SortOrder="Descending")
        for page in pages:
            for summary in page["HyperParameterTuningJobSummaries"]:
                out.append(self.describe(env, summary["HyperParameterTuningJobName"]))
                if len(out) >= limit:
                    return out
        return out

    def cancel(self, env: Environment, job_id: str) -> JobStatus:
        if env.emulated:  # moto has no StopHyperParameterTuningJob (its server answers 500, retried at length)
            current = self.describe(env, job_id)
            if current.done:
                raise CloudError(f"tuning job {job_id} already ended ({current.state}); nothing to cancel",
                                 field="job", hint="`ftops jobs results` shows its best training job")
            raise CloudError("the AWS emulator (moto) does not implement StopHyperParameterTuningJob", field="job",
                             hint="cancel works against real SageMaker; local sweeps finish within `apply`")
        try:
            client(env).stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_id)
        except Exception as exc:
            if _not_found(exc):
                raise _no_job("tuning", job_id) from None
            if "not been implemented" in str(exc):
                raise CloudError("the AWS emulator (moto) does not implement StopHyperParameterTuningJob", field="job",
                                 hint="cancel works against real SageMaker; local sweeps finish within `apply`") from None
            raise
        return self.describe(env, job_id)

    def events(self, env: Environment, job_id: str, limit: int = 100) -> list[JobEvent]:
        tuning = self._tuning(env, job_id)
        status = self.describe(env, job_id)
        events = [JobEvent(_iso(tuning.get("CreationTime")) or "", f"tuning job created ({status.provider_status})")]
        for trial in self.trials(env, job_id):
            tuned = ", ".join(f"{k}={v}" for k, v in sorted(trial["hyperparameters"].items()))
            value = "" if trial["objective"] is None else f", objective {trial['objective']:.4f}"
            level = "error" if trial["status"] == "Failed" else "info"
            reason = f": {trial['failure_reason']}" if trial.get("failure_reason") else ""
            events.append(JobEvent(status.finished_at or "", f"trial {trial['training_job']} ({tuned}): "
                                                             f"{trial['status']}{value}{reason}", level))
        best = self.best(env, job_id) if status.done else None
        if best:
            events.append(JobEvent(status.finished_at or "", f"best training job {best['training_job']}: "
                                                             f"{best['metric']} {best['value']} ({best['goal']})"))
        return events[-limit:]

    # --- results --------------------------------------------------------------------------------

    def metrics(self, env: Environment, job_id: str) -> Metrics:
        """The best trial's training curve (and its checkpoints)."""
        best = self.best(env, job_id)
        if best is None:
            return Metrics(rows=[], source=f"tuning job {job_id}: no best training job yet")
        found = super().metrics(env, best["training_job"])
        found.source = f"best training job {best['training_job']}: {found.source}"
        return found
