"""Hostile input, datasets (issue 17, "Crashes and hangs"): FIFOs, directories, over-long lines, forged manifests
and markup in paths get one line, never a hang or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "it-helpdesk"


def one_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    text = result.stderr.strip()
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text, text
    return text


def _no_hang(call, seconds: float = 20):
    """Run `call` in a thread; a FIFO opened for reading would block it forever."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=call()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():  # unblock the reader so the suite can go on, then fail
        for fifo in _no_hang.fifos:
            with open(fifo, "wb"):
                pass
        pytest.fail("the command blocked on a FIFO")
    return box["result"]


_no_hang.fifos = []


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "data.jsonl"
    os.mkfifo(path)
    _no_hang.fifos = [path]
    return path


def test_validate_and_prepare_refuse_a_fifo_by_type(ftops, fifo, tmp_path):
    assert "FIFO" in one_line(_no_hang(lambda: ftops("data", "validate", fifo)))
    assert "FIFO" in one_line(_no_hang(lambda: ftops("data", "prepare", fifo, "--out", tmp_path / "o")))
    assert "directory" in one_line(ftops("data", "validate", tmp_path))


def test_estimate_and_upload_refuse_a_fifo_manifest_or_split(ftops, tmp_path, monkeypatch):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    manifest = json.loads((SAMPLE / "prepared" / "manifest.json").read_text())
    (prepared / "manifest.json").write_text(json.dumps(manifest))
    for name in ("validation.jsonl", "test.jsonl"):
        (prepared / name).write_bytes((SAMPLE / "prepared" / name).read_bytes())
    os.mkfifo(prepared / "train.jsonl")
    _no_hang.fifos = [prepared / "train.jsonl"]
    text = one_line(_no_hang(lambda: ftops("data", "upload", prepared, "--env", "local")))
    assert "FIFO" in text and "train.jsonl" in text
    (prepared / "manifest.json").unlink()
    os.mkfifo(prepared / "manifest.json")
    _no_hang.fifos = [prepared / "manifest.json"]
    assert "FIFO" in one_line(_no_hang(lambda: ftops("data", "estimate", prepared)))


def test_upload_accepts_the_manifest_file_itself(ftops, tmp_path, monkeypatch):
    """`data upload DIR/manifest.json` raised NotADirectoryError: DIR/manifest.json/manifest.json."""
    from jobs.data import upload

    seen = {}

    def fake_upload(environment, directory, clouds, on_progress=None):
        seen["directory"] = directory
        return upload.UploadReport(env=environment.name, dataset_id="x")

    monkeypatch.setattr(upload, "upload_dataset", fake_upload)
    result = ftops("data", "upload", SAMPLE / "prepared" / "manifest.json", "--env", "local", "--json")
    assert result.exit_code == 0, result.stderr
    assert seen["directory"] == SAMPLE / "prepared"


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["files"]["train"].update(tokens=-15_000_000), "greater than or equal to 0"),
    (lambda m: m["files"]["train"].update(examples=-1), "greater than or equal to 0"),
    (lambda m: m["files"]["train"].update(path="../../etc/passwd"), "should match pattern"),
    (lambda m: m["files"]["train"].update(path="/etc/passwd"), "should match pattern"),
    (lambda m: m.update(price_override=0), "Extra inputs are not permitted"),
    (lambda m: m["files"].pop("train"), "no train split"),
])
def test_a_forged_manifest_is_refused_before_any_estimate(ftops, tmp_path, change, message):
    """Negative counts turned a refused job into a $-15,000 estimate."""
    manifest = json.loads((SAMPLE / "prepared" / "manifest.json").read_text())
    change(manifest)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    text = one_line(ftops("data", "estimate", tmp_path))
    assert message in text and "manifest.json" in text


def test_a_30_mb_line_is_refused_before_it_is_tokenized(tmp_path):
    """A 30 MB line took 1.6 GB to tokenize before its token count rejected it."""
    path = tmp_path / "long.jsonl"
    content = os.urandom(11 << 20).hex()[: 30 << 20]  # hex digits: many tokens per byte
    with open(path, "w") as handle:
        handle.write(json.dumps({"messages": [{"role": "user", "content": content},
                                              {"role": "assistant", "content": "ok"}]}) + "\n")
        handle.write(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                              {"role": "assistant", "content": "ok"}]}) + "\n")
    # VmHWM is this process's own peak (ru_maxrss would carry pytest's across fork and exec).
    code = ("import re, sys; from pathlib import Path; from jobs.data.tokens import resolve; "
            "from jobs.data.validate import validate_file; c, l = resolve(None, None); "
            "r = validate_file(Path(sys.argv[1]), None, c, l, workers=1); "
            "print([(i.line, i.code) for i in r.errors if i.line], "
            "int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) >> 10)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    errors, peak_mb = out.stdout.rsplit(" ", 1)
    assert "(1, 'E_LINE_TOO_LONG')" in errors and int(peak_mb) < 400, out.stdout


def test_markup_in_an_output_path_is_printed_as_written(ftops, tmp_path):
    """A closing tag with nothing to close raised rich's MarkupError (a traceback) after the work was done."""
    out = tmp_path / "o[/]"
    result = ftops("data", "prepare", SAMPLE / "support-chat.jsonl", "--out", out, "--group-by", "intent")
    assert result.exit_code == 0, result.stderr
    assert "o[/]" in result.stdout and (out / "manifest.json").is_file()


def test_markup_in_a_render_output_path_is_printed_as_written(project, ftops, tmp_path):
    out = tmp_path / "r[/]"
    result = ftops("render", "--env", "local", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert (out / "local").is_dir()
    result = ftops("diff", "--env", "local", "--against", out)
    assert result.exit_code == 0 and "r[/]" in " ".join(result.stderr.split()).replace(" ", "") + result.stdout
