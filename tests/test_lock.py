"""The lock (``bert.workflow.lock``): one writer at a time, shared with the child processes it is
passed to, and never anything written into a file that is not the lock file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bert.__main__ import main
from bert.errors import BusyError, OutputError
from bert.workflow import lock as lock_module
from bert.workflow.lock import LOCK_FILE, child_process_options, hold, hold_project_lock
from tests.workflow import tiny, write_params

ROOT = Path(__file__).resolve().parents[1]
PROTECTS = "the test folder"

# A process that takes the lock of the folder it runs in, says so, and waits to be killed.
# With "--child", it first starts a child that shares the lock, and prints the child's pid.
HOLDER = """
import subprocess, sys, time
from bert.workflow.lock import child_process_options, hold_project_lock

hold_project_lock()
if "--child" in sys.argv:
    child = subprocess.Popen([sys.executable, "-c", "import time\\n"
        "from bert.workflow.lock import hold_project_lock\\n"
        "hold_project_lock(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, **child_process_options())
    assert child.stdout.readline().strip() == "held"
    print(child.pid, flush=True)
print("held", flush=True)
time.sleep(60)
"""


def start_holder(folder: Path, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, *args], cwd=folder,
                               stdout=subprocess.PIPE, text=True)
    return process


def wait_held(process: subprocess.Popen) -> str:
    line = process.stdout.readline().strip()
    assert line, "the holder did not start"
    return line


def stop(*processes: subprocess.Popen | int) -> None:
    for process in processes:
        pid = process if isinstance(process, int) else process.pid
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if not isinstance(process, int):
            process.wait()


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # a zombie of ours is gone enough: it holds no descriptor
            with open(f"/proc/{pid}/stat") as status:
                if status.read().split(") ")[1].startswith("Z"):
                    return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not end")


def take(folder: Path) -> subprocess.CompletedProcess:
    """A fresh process that tries to take the folder's lock."""
    return subprocess.run([sys.executable, "-c", "from bert.__main__ import main\n"
                           "from bert.workflow.lock import hold_project_lock\n"
                           "from bert.errors import BertError\n"
                           "try:\n    hold_project_lock()\n"
                           "except BertError as e:\n    raise SystemExit(f'error: {e}')\n"
                           "print('taken')"],
                          cwd=folder, capture_output=True, text=True, timeout=60)


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(lock_module.INHERITED, raising=False)
    return tmp_path


# --- one writer at a time --------------------------------------------------------------------

def test_a_second_process_is_refused_with_the_holder_named(folder):
    holder = start_holder(folder)
    try:
        wait_held(holder)
        refused = take(folder)
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert (f"error: the project folder {folder.resolve()} is in use by another workflow "
                f"process (pid {holder.pid}: python -c ") in refused.stderr
        assert "wait for it to finish, then run the command again" in refused.stderr
    finally:
        stop(holder)
    assert take(folder).stdout.strip() == "taken"  # the kernel ends the lock with its holder


def test_the_record_names_the_holder_and_a_killed_one_leaves_nothing_in_the_way(folder):
    with hold_project_lock() as lock:
        record = (folder / LOCK_FILE).read_text()
        assert record == f"{os.getpid()} {lock_module.command_line()}\n"
        assert lock.path == Path(LOCK_FILE)
    holder = start_holder(folder)
    wait_held(holder)
    stop(holder)  # SIGKILL: no chance to clean up
    with hold_project_lock():
        assert (folder / LOCK_FILE).read_text().startswith(f"{os.getpid()} ")


def test_holding_again_in_the_same_process_and_releasing(folder):
    first = hold(LOCK_FILE, PROTECTS)
    second = hold(LOCK_FILE, PROTECTS)
    assert second is first and first.depth == 2
    second.release()
    assert "in use" in take(folder).stderr  # still held once
    first.release()
    assert take(folder).stdout.strip() == "taken"
    assert lock_module.held_locks() == []


# --- never anything but our lock file ---------------------------------------------------------

def refused(folder: Path, expected: str) -> None:
    """Taking the lock refuses in one line with ``expected``, and writes nothing."""
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(OutputError, match=re.escape(expected)) as caught:
        hold_project_lock()
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == before


def immutable(path: Path) -> None:
    """``path`` made a file that cannot be opened for writing (by root too)."""
    path.write_text("")
    if os.geteuid() == 0:  # root opens any file: make it immutable
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("chattr +i is not supported here")
    else:
        path.chmod(0)


def mutable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    with contextlib.suppress(OSError):
        path.chmod(0o644)


NOT_OURS = {  # how .bert.lock is made, and the line every command says
    "link": (lambda d: (d / LOCK_FILE).symlink_to("precious.txt"), "is a symbolic link"),
    "dangling link": (lambda d: (d / LOCK_FILE).symlink_to("nowhere/x"), "is a symbolic link"),
    "hard link": (lambda d: os.link(d / "precious.txt", d / LOCK_FILE), "(a hard link)"),
    "other data": (lambda d: (d / LOCK_FILE).write_text("notes\n"), "holds other data"),
    "folder": (lambda d: (d / LOCK_FILE).mkdir(), "is a folder, not the workflow's lock file"),
    "fifo": (lambda d: os.mkfifo(d / LOCK_FILE), "is a named pipe (FIFO)"),
    "immutable": (lambda d: immutable(d / LOCK_FILE), "the lock file cannot be opened"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(NOT_OURS))
def test_every_command_that_takes_the_lock_refuses_what_is_not_ours(folder, kind):
    make, expected = NOT_OURS[kind]
    (folder / "precious.txt").write_text("my text\n")
    make(folder)
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, tiny())
    try:
        for command in (["-m", "bert", "data"], ["-m", "doit", "list"], ["-m", "doit"]):
            result = subprocess.run([sys.executable, *command], cwd=folder, capture_output=True,
                                    text=True, timeout=60)
            assert result.returncode != 0, result.stdout
            assert "Traceback" not in result.stderr
            errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and f"{LOCK_FILE}: " in errors[0], result.stderr
            assert expected in errors[0], result.stderr
    finally:
        mutable(folder / LOCK_FILE)
    assert (folder / "precious.txt").read_text() == "my text\n"
    assert not (folder / "data").exists() and not (folder / "artifacts").exists()


def test_a_link_is_refused_and_nothing_is_written_through_it(folder):
    precious = folder / "precious.txt"
    precious.write_text("my text\n")
    (folder / LOCK_FILE).symlink_to("precious.txt")
    refused(folder, f"{LOCK_FILE}: is a symbolic link, not the workflow's lock file")
    assert precious.read_text() == "my text\n"
    (folder / LOCK_FILE).unlink()
    (folder / LOCK_FILE).symlink_to("nowhere/new.txt")  # a link to nothing: nothing created
    refused(folder, "is a symbolic link")
    assert not (folder / "nowhere").exists()


def test_a_hard_link_to_a_file_is_refused_and_left_alone(folder):
    precious = folder / "precious.txt"
    precious.write_text("my text\n")
    os.link(precious, folder / LOCK_FILE)
    refused(folder, "is one of 2 names of the same file (a hard link)")
    assert precious.read_text() == "my text\n"


def test_a_file_holding_other_data_is_left_alone(folder):
    (folder / LOCK_FILE).write_text("my notes about locks\n")
    refused(folder, "holds other data than a lock record, so it is left alone")
    assert (folder / LOCK_FILE).read_text() == "my notes about locks\n"
    (folder / LOCK_FILE).write_text("12345\n")  # a record of an earlier version: ours
    with hold_project_lock():
        pass


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_folder_or_a_pipe_is_refused_at_once(folder, kind):
    if kind == "folder":
        (folder / LOCK_FILE).mkdir()
        expected = f"{LOCK_FILE}: is a folder, not the workflow's lock file; remove it (rmdir"
    else:
        os.mkfifo(folder / LOCK_FILE)
        expected = f"{LOCK_FILE}: is a named pipe (FIFO), not the workflow's lock file"
    started = time.monotonic()
    refused(folder, expected)
    assert time.monotonic() - started < 30


@pytest.mark.slow
def test_two_workflows_never_both_run_when_the_lock_is_a_folder(folder):
    (folder / LOCK_FILE).mkdir()
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, tiny())
    runs = [subprocess.Popen([sys.executable, "-m", "doit"], cwd=folder, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode != 0 and "is a folder, not the workflow's lock file" in err
    assert not (folder / "data").exists()


def test_a_lock_file_that_cannot_be_opened_is_refused(folder):
    immutable(folder / LOCK_FILE)
    try:
        refused(folder, f"{LOCK_FILE}: the lock file cannot be opened (Operation not "
                "permitted)" if os.geteuid() == 0 else
                f"{LOCK_FILE}: the lock file cannot be opened (Permission denied)")
    finally:
        mutable(folder / LOCK_FILE)


def test_a_read_only_folder_is_refused(folder, monkeypatch):
    original = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(LOCK_FILE):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return original(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(OutputError, match="cannot be opened \\(Read-only file system\\).*run "
                       "from a folder you can write to"):
        hold_project_lock()


def test_a_file_system_without_locks_is_refused(folder, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(OutputError, match="cannot be locked \\(No locks available\\)"):
        hold_project_lock()
    assert lock_module.held_locks() == []


def test_a_lock_file_replaced_while_it_is_taken_is_taken_again(folder, monkeypatch):
    """Between opening and locking, another process replaced the file: the lock must be on the
    file now at the path, else a third process would lock that one beside us."""
    lock_file = folder / LOCK_FILE
    original, calls = lock_module._lock, []

    def replaced_first(fd, path, protects, wait=False):
        calls.append(fd)
        if len(calls) == 1:
            (folder / "new").write_text("")
            os.replace(folder / "new", lock_file)
        return original(fd, path, protects, wait)

    monkeypatch.setattr(lock_module, "_lock", replaced_first)
    with hold_project_lock() as lock:
        assert len(calls) == 2
        assert lock.identity == (lock_file.stat().st_dev, lock_file.stat().st_ino)
        assert "in use" in take(folder).stderr


# --- shared with the processes it is passed to ------------------------------------------------

def test_a_child_shares_the_lock_and_keeps_it_after_its_parent_is_killed(folder):
    parent = start_holder(folder, "--child")
    child = int(wait_held(parent))
    try:
        wait_held(parent)
        assert f"pid {parent.pid}: python -c" in take(folder).stderr
        record = (folder / LOCK_FILE).read_text().splitlines()
        assert [int(line.split()[0]) for line in record] == [parent.pid, child]
        stop(parent)  # the child lives on, and keeps everyone else out
        refused_now = take(folder)
        assert f"(pid {child}: python -c" in refused_now.stderr
        assert f"pid {parent.pid}" not in refused_now.stderr  # only holders still running
    finally:
        stop(parent, child)
    wait_gone(child)
    assert take(folder).stdout.strip() == "taken"


def test_an_environment_naming_a_descriptor_that_was_not_passed_down_is_not_trusted(folder):
    take_lock = [sys.executable, "-c", "from bert.workflow.lock import hold_project_lock\n"
                 "hold_project_lock()"]
    with hold_project_lock():
        env = child_process_options()["env"]
        # the variable without the descriptor: nothing to adopt
        result = subprocess.run(take_lock, capture_output=True, text=True, env=env, timeout=60)
        assert "is in use by another workflow process" in result.stderr
        # another file's descriptor under the number the variable names: not adopted either
        other = os.open(folder / "other", os.O_RDWR | os.O_CREAT)
        number = os.dup2(other, 200)
        device, inode, _ = env[lock_module.INHERITED].split(":")
        env = {**env, lock_module.INHERITED: f"{device}:{inode}:{number}"}
        try:
            result = subprocess.run(take_lock, capture_output=True, text=True, env=env,
                                    pass_fds=(number,), timeout=60)
        finally:
            os.close(number)
            os.close(other)
        assert "is in use by another workflow process" in result.stderr


def test_a_stage_run_by_hand_beside_a_holder_is_refused(folder, capsys):
    write_params(folder, tiny())
    holder = start_holder(folder)
    try:
        wait_held(holder)
        assert main(["data"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by another workflow process (pid {holder.pid}" in err
        assert not (folder / "data").exists()
    finally:
        stop(holder)


def test_a_removed_lock_file_is_taken_again_or_the_other_holder_named(folder):
    with hold_project_lock() as lock:
        (folder / LOCK_FILE).unlink()  # e.g. a careful user removing a "stale" lock file
        lock.check()  # nobody took the new one: now held as well
        assert "in use" in take(folder).stderr
        (folder / LOCK_FILE).unlink()
        holder = start_holder(folder)  # a second workflow got in meanwhile
        try:
            wait_held(holder)
            with pytest.raises(BusyError, match=f"pid {holder.pid}"):
                lock.check()
        finally:
            stop(holder)
        for held in lock_module.held_locks():
            if held is not lock:
                held.release()


# --- a lock file removed while it is held -----------------------------------------------------

def test_a_watched_lock_takes_its_removed_file_again(folder):
    with hold_project_lock() as lock:
        lock.watch(0.05, lambda error: None)
        (folder / LOCK_FILE).unlink()
        deadline = time.monotonic() + 10
        while not (folder / LOCK_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "in use" in take(folder).stderr  # the new file is held too
        for held in lock_module.held_locks():
            if held is not lock:
                held.release()


def test_a_watched_lock_says_when_another_process_holds_its_replacement(folder):
    lost: list[BusyError] = []
    with hold_project_lock() as lock:
        (folder / LOCK_FILE).unlink()
        holder = start_holder(folder)  # a second workflow gets in before the watch looks
        try:
            wait_held(holder)
            lock.watch(0.05, lost.append)
            deadline = time.monotonic() + 10
            while not lost and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop(holder)
    assert len(lost) == 1 and f"(pid {holder.pid}: python -c" in str(lost[0])


@pytest.mark.slow
def test_two_doits_started_together_never_both_run(folder):
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    write_params(folder, tiny())
    runs = [subprocess.Popen([sys.executable, "-m", "doit", "data"], cwd=folder,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes[0] == 0 and codes[1] != 0, results
    refused_err = next(err for run, (_, err) in zip(runs, results, strict=True) if run.returncode)
    assert "is in use by another workflow process (pid " in refused_err
    assert "Traceback" not in refused_err


# A doit that waits after the data stage until a file ``go`` appears.
WAIT_AFTER_DATA = """

import time
from pathlib import Path

import doit.runner

_process_task_result = doit.runner.Runner.process_task_result


def _wait_after_data(self, node, base_fail):
    _process_task_result(self, node, base_fail)
    if node.task.name == "data":
        Path("between").touch()
        while not Path("go").exists():
            time.sleep(0.02)


doit.runner.Runner.process_task_result = _wait_after_data
"""


@pytest.mark.slow
@pytest.mark.parametrize("taken", [False, True], ids=["removed", "taken by another"])
def test_a_lock_file_removed_between_stages(folder, taken):
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    (folder / "dodo.py").write_text((folder / "dodo.py").read_text() + WAIT_AFTER_DATA)
    write_params(folder, tiny())
    run = subprocess.Popen([sys.executable, "-m", "doit", "data", "init"], cwd=folder,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (folder / "between").exists():
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    (folder / LOCK_FILE).unlink()  # "a stale lock file"
    holder = start_holder(folder) if taken else None
    try:
        if holder:
            wait_held(holder)
        (folder / "go").touch()
        _, err = run.communicate(timeout=120)
    finally:
        if holder:
            stop(holder)
    if taken:  # doit stops before its next stage
        assert run.returncode != 0 and "Traceback" not in err
        assert f"error: the project folder {folder.resolve()} is in use by another workflow " \
               f"process (pid {holder.pid}" in err
        assert not (folder / "artifacts/init.h5").exists()
    else:  # doit takes the new lock file and goes on
        assert run.returncode == 0, err
        assert (folder / "artifacts/init.h5").exists()


def test_a_record_naming_impossible_pids_is_no_crash(folder):
    (folder / LOCK_FILE).write_text("9999999999\n0\n")  # numbers no live process has
    with hold_project_lock():
        assert (folder / LOCK_FILE).read_text().startswith(f"{os.getpid()} ")
    holder = start_holder(folder)
    try:
        wait_held(holder)
        with open(folder / LOCK_FILE, "a") as record:
            record.write("9999999999 ghost\n")
        assert f"(pid {holder.pid}: python -c" in take(folder).stderr
    finally:
        stop(holder)
