"""Hostile input, data loss (issue 17, 1 and 2): ftops replaces or writes into only directories it made itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jobs.errors import FtopsError
from jobs.fsutil import (OWNER_MARKER, check_replaceable, ensure_owned_dir, regular_file, replace_dir,
                         resolve_under)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "it-helpdesk" / "support-chat.jsonl"


def one_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    text = result.stderr.strip()
    assert text.startswith("error: ") and "\n" not in text, text
    return text


def test_prepare_out_dot_in_a_repository_keeps_git_and_sources(ftops, tmp_path, monkeypatch):
    """Case 17.1: `--out .` in a directory holding any manifest.json replaced the whole directory, .git included."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("print('mine')\n")
    (repo / "manifest.json").write_text("{}")
    monkeypatch.chdir(repo)
    text = one_line(ftops("data", "prepare", SAMPLE, "--out", "."))
    assert "not created by ftops" in text and "--out" in text
    assert (repo / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert (repo / "src" / "app.py").exists() and (repo / "manifest.json").read_text() == "{}"


def test_prepare_replaces_its_own_output_but_not_one_a_user_changed(ftops, tmp_path):
    out = tmp_path / "prepared"
    assert ftops("data", "prepare", SAMPLE, "--out", out).exit_code == 0
    assert json.loads((out / OWNER_MARKER).read_text())["kind"] == "prepared dataset"
    assert ftops("data", "prepare", SAMPLE, "--out", out, "--seed", "7").exit_code == 0  # its own: replaced
    (out / "notes.md").write_text("my analysis")
    text = one_line(ftops("data", "prepare", SAMPLE, "--out", out))
    assert "notes.md was added" in text
    assert (out / "notes.md").read_text() == "my analysis"
    (out / "notes.md").unlink()
    with open(out / "train.jsonl", "ab") as handle:
        handle.write(b'{"messages": []}\n')
    assert "train.jsonl was changed" in one_line(ftops("data", "prepare", SAMPLE, "--out", out))


def test_render_out_home_does_not_remove_home_dev(project, ftops, tmp_path):
    """Case 17.2: `--out ~ --env dev` replaced ~/dev whatever it held."""
    home = tmp_path / "home"
    (home / "dev" / "project").mkdir(parents=True)
    (home / "dev" / "project" / "thesis.tex").write_text("years of work")
    text = one_line(ftops("render", "--env", "dev", "--out", home))
    assert "not created by ftops" in text
    assert (home / "dev" / "project" / "thesis.tex").read_text() == "years of work"
    assert not [p for p in home.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_render_rerenders_its_own_tree_and_refuses_a_hand_edited_one(project, ftops, tmp_path):
    out = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", out).exit_code == 0
    assert ftops("render", "--env", "local", "--out", out).exit_code == 0
    job_dir = next(p for p in (out / "local").iterdir() if p.is_dir())
    extra = job_dir / "reviewer-notes.txt"
    extra.write_text("keep me")
    assert "was added" in one_line(ftops("render", "--env", "local", "--out", out))
    assert extra.read_text() == "keep me"


def test_results_and_eval_write_only_into_their_own_folders(tmp_path):
    from jobs.providers.base import JobStatus, Metrics
    from jobs.results.report import write_results

    home = tmp_path / "home"
    home.mkdir()
    (home / "summary.json").write_text("my own summary")
    status = JobStatus(provider="sagemaker", job_id="j", state="succeeded", provider_status="Completed")
    with pytest.raises(FtopsError, match="not created by ftops"):
        write_results(status, Metrics(rows=[{"step": 1, "train_loss": 1.0}], source="t"), home, "j")
    assert (home / "summary.json").read_text() == "my own summary"
    fresh = tmp_path / "results"
    write_results(status, Metrics(rows=[{"step": 1, "train_loss": 1.0}], source="t"), fresh, "j")
    write_results(status, Metrics(rows=[{"step": 1, "train_loss": 0.5}], source="t"), fresh, "j")  # again: ours
    with pytest.raises(FtopsError, match="holds ftops's job results, not its evaluation"):
        ensure_owned_dir(fresh, "evaluation")


def test_paths_built_from_names_stay_under_their_directory(tmp_path):
    base = tmp_path / "state" / "results"
    base.mkdir(parents=True)
    assert resolve_under(base, "job-1") == (base / "job-1").resolve()
    for hostile in ("../../etc", "/etc/passwd", "a/../../b"):
        with pytest.raises(FtopsError, match="leads outside"):
            resolve_under(base, hostile, what="job name")
    (base / "link").symlink_to(tmp_path)
    with pytest.raises(FtopsError, match="leads outside"):
        resolve_under(base, "link/x")


def test_default_results_folder_refuses_a_job_label_that_climbs_out(tmp_path, monkeypatch):
    from jobs.eval import plan

    monkeypatch.setenv("FTOPS_STATE_DIR", str(tmp_path / "state"))
    env = type("Env", (), {"name": "local"})()
    with pytest.raises(FtopsError, match="leads outside"):
        plan.default_out_dir(env, "../../../../victim")


def test_replace_dir_swaps_atomically_and_refuses_links(tmp_path):
    target = tmp_path / "out"
    staging = tmp_path / ".out.partial"
    staging.mkdir()
    (staging / "a.txt").write_text("1")
    replace_dir(staging, target, "thing")
    assert (target / "a.txt").read_text() == "1" and not staging.exists()
    check_replaceable(target, "thing")
    with pytest.raises(FtopsError, match="not its other"):
        check_replaceable(target, "other")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(FtopsError, match="symbolic link"):
        check_replaceable(tmp_path / "link", "thing")
    (target / OWNER_MARKER).write_text("not json")
    with pytest.raises(FtopsError, match="not created by ftops"):
        check_replaceable(target, "thing")


def test_regular_file_refuses_a_fifo_and_a_directory_without_opening(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FtopsError, match="FIFO"):
        regular_file(fifo)
    with pytest.raises(FtopsError, match="directory"):
        regular_file(tmp_path)
    with pytest.raises(FtopsError, match="no such file"):
        regular_file(tmp_path / "missing")
    (tmp_path / "f").write_text("x")
    assert regular_file(tmp_path / "f") == tmp_path / "f"


def test_outputs_of_earlier_versions_without_a_marker_are_recognised_only_by_their_exact_shape(ftops, project,
                                                                                                tmp_path):
    out = tmp_path / "prepared"
    assert ftops("data", "prepare", SAMPLE, "--out", out).exit_code == 0
    (out / OWNER_MARKER).unlink()  # as an earlier ftops left it
    assert ftops("data", "prepare", SAMPLE, "--out", out, "--seed", "3").exit_code == 0
    assert (out / OWNER_MARKER).is_file()
    (out / OWNER_MARKER).unlink()
    (out / "test.jsonl").write_text("edited\n")
    assert "not created by ftops" in one_line(ftops("data", "prepare", SAMPLE, "--out", out))

    rendered = tmp_path / "rendered"
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    (rendered / "local" / OWNER_MARKER).unlink()
    assert ftops("render", "--env", "local", "--out", rendered).exit_code == 0
    (rendered / "local" / OWNER_MARKER).unlink()
    job_dir = next(p for p in (rendered / "local").iterdir() if p.is_dir())
    (job_dir / "notes.txt").write_text("mine")
    assert "not created by ftops" in one_line(ftops("render", "--env", "local", "--out", rendered))
    assert (job_dir / "notes.txt").read_text() == "mine"


def test_results_folders_of_earlier_versions_are_adopted_but_a_home_directory_is_not(tmp_path, isolated_state):
    from jobs.results.report import RESULTS_FILES, RESULTS_KIND

    earlier = isolated_state / "results" / "local" / "job"
    earlier.mkdir(parents=True)
    (earlier / "summary.json").write_text("{}")
    (earlier / "metrics.csv").write_text("step\n")
    assert ensure_owned_dir(earlier, RESULTS_KIND, own_files=RESULTS_FILES) == earlier
    assert json.loads((earlier / OWNER_MARKER).read_text())["kind"] == RESULTS_KIND
    home = tmp_path / "home"  # outside .ftops/: a marker is required, whatever it holds
    home.mkdir()
    (home / "summary.json").write_text("{}")
    with pytest.raises(FtopsError, match="not created by ftops"):
        ensure_owned_dir(home, RESULTS_KIND, own_files=RESULTS_FILES)


def test_a_file_in_the_way_of_an_output_is_one_line(ftops, project, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "file is in the way" in one_line(ftops("render", "--env", "local", "--out", blocker))
    assert "file is in the way" in one_line(ftops("data", "prepare", SAMPLE, "--out", blocker / "sub"))
    assert blocker.read_text() == "x"


def test_evals_loss_plot_never_writes_into_the_output_folder(tmp_path, monkeypatch):
    """`ftops eval` draws the training curve before the report, in ftops' own state directory (the report embeds
    it): nothing lands in `--out` before eval's ownership check, so a user's folder stays as it was."""
    from types import SimpleNamespace

    from jobs import paths
    from jobs import providers
    from jobs.models.lifecycle import loss_plot
    from jobs.providers.base import Metrics

    metrics = Metrics(rows=[{"step": 1, "train_loss": 1.0}, {"step": 2, "train_loss": 0.5}], source="t")
    monkeypatch.setattr(providers, "get", lambda name: SimpleNamespace(metrics=lambda env, job_id: metrics))
    env, record = SimpleNamespace(name="local"), SimpleNamespace(training_job_id="j", provider="sagemaker", job="job")
    home = tmp_path / "home"
    home.mkdir()
    (home / "report.md").write_text("my own report")
    plot = loss_plot(env, record, home)
    assert plot is not None and plot.is_file() and plot.is_relative_to(paths.state_dir())
    assert sorted(p.name for p in home.iterdir()) == ["report.md"]
    with pytest.raises(FtopsError, match="not created by ftops"):
        from jobs.eval.plan import EVAL_KIND
        ensure_owned_dir(home, EVAL_KIND)  # what eval checks before it writes the report


def test_a_fifo_planted_in_an_owned_output_is_refused_without_blocking(tmp_path):
    target = tmp_path / "out"
    staging = tmp_path / ".out.partial"
    staging.mkdir()
    (staging / "a.txt").write_text("1")
    replace_dir(staging, target, "thing")
    os.mkfifo(target / "pipe")
    with pytest.raises(FtopsError, match="pipe was added"):
        check_replaceable(target, "thing")


# --- Files at a path the user names, empty paths, diffs against nothing (output audit) --------------------------

WORKFLOW_FIRST_LINE = ("# Generated by `ftops pipeline render`; "
                       "edit templates/pipeline/github-actions.yml.j2 and re-render.\n")


def test_pipeline_render_overwrites_only_a_workflow_it_wrote(ftops, tmp_path):
    """`--out ci.yml` replaced the user's own workflow; a directory or a file in the way was a traceback, and
    `--env dev --env dev` wrote an apply job that needs itself."""
    mine = tmp_path / "ci.yml"
    mine.write_text("name: my CI\n")
    assert "not a workflow written by `ftops pipeline render`" in one_line(
        ftops("pipeline", "render", "--out", mine))
    assert "not a workflow written by" in one_line(ftops("pipeline", "render", "--out", mine, "--check"))
    assert mine.read_text() == "name: my CI\n"
    assert "is a directory" in one_line(ftops("pipeline", "render", "--out", tmp_path))
    assert "file is in the way" in one_line(ftops("pipeline", "render", "--out", mine / "x.yml"))
    repeated = ftops("pipeline", "render", "--env", "dev", "--env", "dev", "--out", tmp_path / "wf.yml")
    assert "--env: dev listed more than once" in one_line(repeated)
    earlier = tmp_path / "ftops.yml"  # what an earlier ftops wrote starts with the same line
    earlier.write_text(WORKFLOW_FIRST_LINE + "name: ftops\n")
    assert ftops("pipeline", "render", "--out", earlier).exit_code == 0
    assert "apply-prod:" in earlier.read_text()
    assert ftops("pipeline", "render", "--out", earlier).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ci.yml", "ftops.yml"]  # no wf.yml, no temp file


def test_schema_overwrites_only_its_own_schema_files(ftops, tmp_path):
    import orjson

    from jobs.render import schemas

    out = tmp_path / "s"
    out.mkdir()
    (out / "job.schema.json").write_text('{"my": "own"}')
    assert "not a schema written by `ftops schema`" in one_line(ftops("schema", "--out", out))
    assert (out / "job.schema.json").read_text() == '{"my": "own"}'
    assert not (out / "environment.schema.json").exists()  # every file is checked before any is written
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "--out: is not a directory" in one_line(ftops("schema", "--out", blocker))
    assert "file is in the way" in one_line(ftops("schema", "--out", blocker / "x"))
    assert blocker.read_text() == "x"
    # Written before the schemas carried their mark: recognised by $schema, title and exact formatting.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name, data in schemas.schema_documents().items():
        document = orjson.loads(data)
        del document["$comment"]
        document["description"] = "an older model"
        (earlier / name).write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                                     + b"\n")
    assert ftops("schema", "--out", earlier).exit_code == 0
    assert schemas.stale(earlier) == []
    hand_made = json.loads((earlier / "job.schema.json").read_text())
    del hand_made["$comment"]
    (earlier / "job.schema.json").write_text(json.dumps(hand_made))  # same title, a user's formatting
    assert "not a schema written by" in one_line(ftops("schema", "--out", earlier))


def test_written_files_get_the_usual_mode_or_keep_the_one_they_had(ftops, tmp_path):
    """atomic_write used mkstemp's 0600: committed schemas and workflows were unreadable to others."""
    import stat

    from jobs.fsutil import atomic_write

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    previous = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.json", "{}")
        assert mode(tmp_path / "new.json") == 0o640
        os.umask(0o022)
        assert ftops("schema", "--out", tmp_path / "schemas").exit_code == 0
        assert {mode(p) for p in (tmp_path / "schemas").iterdir()} == {0o644}
        script = tmp_path / "run.sh"
        script.write_text("old")
        script.chmod(0o750)
        atomic_write(script, "new")
        assert script.read_text() == "new" and mode(script) == 0o750
    finally:
        os.umask(previous)


@pytest.mark.parametrize("command", [
    ("render", "--out"), ("schema", "--out"), ("pipeline", "render", "--out"),
    ("data", "prepare", SAMPLE, "--out"), ("data", "validate", SAMPLE, "--against-train"),
    ("diff", "--against"),
    ("jobs", "results", "j", "--out"), ("jobs", "results", "j", "--dir"), ("jobs", "status", "j", "--dir"),
    ("jobs", "wait", "--dir"), ("jobs", "events", "j", "--dir"), ("jobs", "cancel", "j", "--dir"),
    ("eval", "j", "--out"), ("eval", "j", "--loss-plot"), ("eval", "j", "--dir"), ("deploy", "j", "--gitops"),
    ("deploy", "j", "--dir"), ("undeploy", "j", "--dir"), ("models", "approve", "j", "--evaluation"),
], ids=lambda command: " ".join(str(part) for part in command if part != SAMPLE))
def test_an_empty_path_is_refused_instead_of_meaning_here(ftops, tmp_path, monkeypatch, command):
    """`ftops render --out ""` wrote ./local/ and `ftops data prepare --out ""` in an empty directory swapped
    the working directory itself for its output: Path("") is ".". Usage error, exit 2, nothing written."""
    monkeypatch.chdir(tmp_path)
    result = ftops(*command, "")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"Invalid value for '{command[-1]}'" in result.stderr and "empty path" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("command", "argument"), [
    (("apply",), "directory"), (("plan",), "directory"), (("preflight",), "directory"),
    (("data", "validate"), "file"), (("data", "prepare"), "file"), (("data", "estimate"), "directory"),
    (("data", "upload"), "directory"), (("run-local",), "job"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else value)
def test_an_empty_positional_path_is_refused_too(ftops, tmp_path, monkeypatch, command, argument):
    """`ftops apply ""` (an unset `$DIR`) read the working directory as the rendered tree."""
    monkeypatch.chdir(tmp_path)
    extra = ("--out", str(tmp_path / "out")) if command == ("data", "prepare") else ()
    result = ftops(*command, "", *extra)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert f"Invalid value for '{argument}'" in result.stderr and "empty path" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_diff_against_a_missing_tree_is_an_error_not_an_all_added_diff(project, ftops, tmp_path):
    """`--against nope`, `--against FILE` and `--against-env nope` printed every job as added."""
    for against, expected in ((tmp_path / "nope", "--against: no such directory"),
                              (Path(SAMPLE), "--against: is not a directory")):
        result = ftops("diff", "--env", "local", "--against", against)
        assert expected in one_line(result) and result.stdout == ""
    out = tmp_path / "r"
    assert ftops("render", "--env", "local", "--out", out).exit_code == 0
    result = ftops("diff", "--env", "local", "--against", out, "--against-env", "nope")
    text = one_line(result)
    assert "--against-env: holds no rendered tree for nope" in text and "local" in text
    assert result.stdout == ""
    # An environment the tree has no directory for yet (new on a pull request): every job shows as added.
    new = ftops("diff", "--env", "dev", "--against", out, "--json")
    assert new.exit_code == 1
    payload = json.loads(new.stdout)
    assert payload["against_exists"] is False and {c["kind"] for c in payload["changes"]} == {"added"}


@pytest.mark.parametrize("content", [b"{broken", b"[]", b'{"job": 3}'])
def test_diff_against_a_tree_with_a_broken_index_names_it(project, ftops, tmp_path, content):
    out = tmp_path / "r"
    assert ftops("render", "--env", "local", "--out", out).exit_code == 0
    index = next((out / "local").glob("*/job.json"))
    index.write_bytes(content)
    result = ftops("diff", "--env", "local", "--against", out)
    assert f"{index}: " in one_line(result) and "Traceback" not in result.stderr


def test_diff_shows_a_committed_file_that_is_not_utf8(project, ftops, tmp_path):
    out = tmp_path / "r"
    assert ftops("render", "--env", "local", "--out", out).exit_code == 0
    request = next((out / "local").glob("*/sagemaker.json"))
    request.write_bytes(request.read_bytes() + b"\xff\xfe")
    result = ftops("diff", "--env", "local", "--against", out)
    assert result.exit_code == 1 and "Traceback" not in result.stderr and "sagemaker.json" in result.stdout
