"""Memory and disk, as a user runs out of them: parameters that cannot fit are refused up front
in one line; a full disk or a read-only folder is one line that loses nothing, and the run
resumes once there is space."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.workflow import (
    cli_error,
    doit,
    layout_of,
    make_project,
    run_dir,
    tiny,
    write_params,
)


def one_line_failure(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr


def test_parameters_that_cannot_fit_in_memory_are_refused_up_front(project):
    before = sorted(project.rglob("*"))
    write_params(project, tiny(data={"vocab_size": 4096, "num_topics": 256}))
    result = doit(project, check=False)
    one_line_failure(result, "the data stage needs ~")
    assert "GiB; the machine has" in result.stderr
    write_params(project, tiny(model={"num_layers": 1_000_000_000}))
    one_line_failure(doit(project, check=False), "the train stage needs ~")
    assert sorted(project.rglob("*")) == before


@pytest.mark.parametrize(("params", "command", "expected"), [
    ({"evaluation": {"batch_size": 1_000_000_000}}, "evaluate", "the evaluate stage needs ~"),
    ({"data": {"sequence_length": 4096, "batch_size": 64}}, "data", "the train stage needs ~"),
])
def test_every_stage_refuses_what_a_later_one_cannot_fit(project, capsys, params, command,
                                                        expected):
    write_params(project, tiny(**params))
    assert expected in cli_error(capsys, command)


# --- a full disk ----------------------------------------------------------------------------------

def limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond fails with EFBIG
    return apply


def test_a_full_disk_is_one_line_and_the_run_resumes(project):
    write_params(project, tiny(training={"epochs": 3}))
    checkpoints = sorted(run_dir(project).glob("checkpoints/*/step-*.h5"))
    before = {p: p.read_bytes() for p in checkpoints}
    size = max(p.stat().st_size for p in checkpoints)
    train = [sys.executable, "-m", "bert", "train"]
    result = subprocess.run(train, cwd=project, capture_output=True, text=True, timeout=300,
                            preexec_fn=limit_file_size(size // 2))
    one_line_failure(result, "no space left on device while writing ")
    assert {p: p.read_bytes() for p in checkpoints} == before  # the previous ones intact
    assert not list(project.glob("artifacts/**/*.tmp"))
    result = subprocess.run(train, cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr  # space is back
    assert "resuming from step 12" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="mounts a tmpfs")
def test_a_really_full_filesystem(tmp_path):
    """doit on a 1 MiB file system: one line from the stage, doit's own record (sqlite3) still
    readable, and once the file system grows the run completes from where it stopped."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        make_project(disk, tiny(data={"num_train_batches": 200}))
        result = doit(disk, check=False)
        assert result.returncode != 0
        assert "error: no space left on device while writing " in result.stderr
        assert not list(disk.glob("**/.*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        retry = doit(disk, check=False)
        assert retry.returncode == 0, retry.stderr
        assert (run_dir(disk) / "results.json").is_file()
    finally:
        subprocess.run(["umount", str(disk)])


def test_a_read_only_checkpoints_folder_fails_before_training(project, capsys, tmp_path):
    checkpoints = layout_of(project, tiny()).checkpoints
    shutil.rmtree(checkpoints)
    checkpoints.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: make it a read-only mount
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                           str(checkpoints)]).returncode:
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        checkpoints.chmod(0o555)
    try:
        started = time.perf_counter()
        line = cli_error(capsys, "train")
        assert "(Read-only file system)" in line or "(Permission denied)" in line
        assert str(checkpoints.relative_to(project)) in line
        assert time.perf_counter() - started < 5
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(checkpoints)])
        else:
            checkpoints.chmod(0o755)
