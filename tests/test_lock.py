"""The locks (``bert.workflow.lock``): one writer at a time of what each protects, shared with the
child processes it is passed to, and never anything written into a file that is not the lock
file; through the workflow, a lock per folder a stage writes: a run's, its data's, its initial
weights'."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
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
from bert.workflow.lock import LOCK_FILE, Lock, child_process_options, hold
from bert.workflow.lock_file import command_line
from tests.workflow import doit, layout_of, make_project, tiny, write_params

ROOT = Path(__file__).resolve().parents[1]
PROTECTS = "the test folder"

# A process that takes the lock at the path it is given, says so, and waits to be killed. With
# "--child", it first starts a child that shares the lock, and prints the child's pid.
HOLDER = """
import subprocess, sys, time
from bert.workflow.lock import child_process_options, hold

path = sys.argv[1]
hold(path, "the test folder")
if "--child" in sys.argv:
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\\n"
        "from bert.workflow.lock import hold\\n"
        "hold(sys.argv[1], 'the test folder'); print('held', flush=True); time.sleep(60)", path],
        stdout=subprocess.PIPE, text=True, **child_process_options())
    assert child.stdout.readline().strip() == "held"
    print(child.pid, flush=True)
print("held", flush=True)
time.sleep(60)
"""


def take_lock() -> Lock:
    """The lock of the current folder, as every holder here takes it."""
    return hold(LOCK_FILE, PROTECTS)


def start_holder(folder: Path, *args: str, lock: Path | str = LOCK_FILE) -> subprocess.Popen:
    """A process that holds the lock file ``lock`` (relative to ``folder``)."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), *args], cwd=folder,
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
    return subprocess.run([sys.executable, "-c", "from bert.workflow.lock import hold\n"
                           "from bert.errors import BertError\n"
                           f"try:\n    hold({LOCK_FILE!r}, {PROTECTS!r})\n"
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
        assert (f"error: {PROTECTS} is in use by another workflow process (pid {holder.pid}: "
                "python -c ") in refused.stderr
        assert "wait for it to finish, then run the command again" in refused.stderr
    finally:
        stop(holder)
    assert take(folder).stdout.strip() == "taken"  # the kernel ends the lock with its holder


def test_the_record_names_the_holder_and_a_killed_one_leaves_nothing_in_the_way(folder):
    with take_lock() as lock:
        record = (folder / LOCK_FILE).read_text()
        assert record == f"{os.getpid()} {command_line()}\n"
        assert lock.path == Path(LOCK_FILE)
    holder = start_holder(folder)
    wait_held(holder)
    stop(holder)  # SIGKILL: no chance to clean up
    with take_lock():
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
        take_lock()
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
def test_every_command_that_takes_the_run_s_lock_refuses_what_is_not_ours(folder, kind):
    """The run's lock file made something else: the stage and doit (which takes the locks of
    its runs at its first stage) refuse in one line and write nothing; ``doit list`` takes no
    lock."""
    make, expected = NOT_OURS[kind]
    write_params(folder, tiny())
    run = layout_of(folder, tiny()).run_dir
    run.mkdir(parents=True)
    (run / "precious.txt").write_text("my text\n")
    make(run)
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    try:
        for command in (["-m", "bert", "train"], ["-m", "doit"]):
            result = subprocess.run([sys.executable, *command], cwd=folder, capture_output=True,
                                    text=True, timeout=60)
            assert result.returncode != 0, result.stdout
            assert "Traceback" not in result.stderr
            errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1, result.stderr
            assert f"artifacts/runs/params/{LOCK_FILE}: " in errors[0], result.stderr
            assert expected in errors[0], result.stderr
        assert doit(folder, "list").stderr == ""
    finally:
        mutable(run / LOCK_FILE)
    assert (run / "precious.txt").read_text() == "my text\n"
    assert sorted(p.name for p in run.iterdir()) == sorted(["precious.txt", LOCK_FILE])
    assert not (folder / "data").exists() and not (folder / "artifacts/init").exists()


@pytest.mark.parametrize(("stage", "folder_of"), [("data", "data_dir"), ("init", "init_dir")])
def test_the_shared_stages_refuse_a_lock_file_of_theirs_that_is_not_ours(folder, capsys, stage,
                                                                         folder_of):
    write_params(folder, tiny())
    shared = getattr(layout_of(folder, tiny()), folder_of)
    shared.mkdir(parents=True)
    (folder / "precious.txt").write_text("my text\n")
    (shared / LOCK_FILE).symlink_to(folder / "precious.txt")
    assert main([stage]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{LOCK_FILE}: is a symbolic link" in err
    assert str(shared.relative_to(folder)) in err
    assert (folder / "precious.txt").read_text() == "my text\n"
    assert [p.name for p in shared.iterdir()] == [LOCK_FILE]


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
    with take_lock():
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
    make_project(folder, tiny())
    (layout_of(folder, tiny()).run_lock).mkdir(parents=True)
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
        take_lock()


def test_a_file_system_without_locks_is_refused(folder, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(OutputError, match="cannot be locked \\(No locks available\\)"):
        take_lock()
    assert lock_module.held_locks() == []


def test_a_lock_file_replaced_while_it_is_taken_is_taken_again(folder, monkeypatch):
    """Between opening and locking, another process replaced the file: the lock must be on the
    file now at the path, else a third process would lock that one beside us."""
    lock_file = folder / LOCK_FILE
    original, calls = lock_module.lock_exclusively, []

    def replaced_first(fd, path, protects, wait=False):
        calls.append(fd)
        if len(calls) == 1:
            (folder / "new").write_text("")
            os.replace(folder / "new", lock_file)
        return original(fd, path, protects, wait)

    monkeypatch.setattr(lock_module, "lock_exclusively", replaced_first)
    with take_lock() as lock:
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
    take_lock_again = [sys.executable, "-c", "from bert.workflow.lock import hold\n"
                       f"hold({LOCK_FILE!r}, {PROTECTS!r})"]
    with take_lock():
        env = child_process_options()["env"]
        # the variable without the descriptor: nothing to adopt
        result = subprocess.run(take_lock_again, capture_output=True, text=True, env=env,
                                timeout=60)
        assert "is in use by another workflow process" in result.stderr
        # another file's descriptor under the number the variable names: not adopted either
        other = os.open(folder / "other", os.O_RDWR | os.O_CREAT)
        number = os.dup2(other, 200)
        device, inode, _ = env[lock_module.INHERITED].split(":")
        env = {**env, lock_module.INHERITED: f"{device}:{inode}:{number}"}
        try:
            result = subprocess.run(take_lock_again, capture_output=True, text=True, env=env,
                                    pass_fds=(number,), timeout=60)
        finally:
            os.close(number)
            os.close(other)
        assert "is in use by another workflow process" in result.stderr


def test_a_stage_run_by_hand_beside_a_holder_of_its_run_is_refused(folder, capsys):
    write_params(folder, tiny())
    layout = layout_of(folder, tiny())
    holder = start_holder(folder, lock=layout.run_lock)
    try:
        wait_held(holder)
        assert main(["train"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: the run params is in use by another workflow process "
                              f"(pid {holder.pid}: python -c ") and err.count("\n") == 1
        assert sorted(p.name for p in layout.run_dir.iterdir()) == [LOCK_FILE]
    finally:
        stop(holder)


def test_a_shared_stage_waits_for_the_writer_of_its_folder(folder):
    """The data and the initial weights are shared by runs: their stage waits for another
    writer of its folder (saying so once), then goes on."""
    write_params(folder, tiny())
    layout = layout_of(folder, tiny())
    holder = start_holder(folder, lock=layout.lock("data_dir"))
    try:
        wait_held(holder)
        stage = subprocess.Popen([sys.executable, "-m", "bert", "data"], cwd=folder,
                                 stderr=subprocess.PIPE, text=True)
        waiting = stage.stderr.readline()
        assert waiting.startswith(f"waiting for another workflow process (pid {holder.pid}: "
                                  "python -c ")
        assert f", which writes {layout.data_dir.relative_to(folder)}" in waiting
        assert stage.poll() is None and not layout.train_data.exists()
    finally:
        stop(holder)
    assert stage.wait(timeout=60) == 0, stage.stderr.read()
    assert layout.train_data.is_file()


def test_a_removed_lock_file_is_taken_again_or_the_other_holder_named(folder):
    with take_lock() as lock:
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
    with take_lock() as lock:
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
    with take_lock() as lock:
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


# --- through doit: a lock per run, and one per shared folder --------------------------------------

@pytest.mark.slow
def test_two_doits_of_the_same_run_never_both_run(folder):
    make_project(folder, tiny())
    runs = [subprocess.Popen([sys.executable, "-m", "doit"], cwd=folder,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [run.communicate(timeout=300) for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert codes[0] == 0 and codes[1] != 0, results
    winner = next(run for run in runs if run.returncode == 0)
    refused_err = next(err for run, (_, err) in zip(runs, results, strict=True) if run.returncode)
    errors = [line for line in refused_err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in refused_err, refused_err
    assert errors[0].startswith("error: the run params is in use by another workflow process "
                                f"(pid {winner.pid}: "), errors
    assert "-m doit" in errors[0]
    assert (layout_of(folder, tiny()).results).is_file()


# A data stage that, once it holds the data's lock, waits for a file ``go`` before it writes.
DATA_WAITS_FOR_GO = """
import sys, time
from pathlib import Path

if sys.orig_argv[1:4] == ["-m", "bert", "data"]:
    import bert.storage.h5write as h5write

    write = h5write.write

    def waiting_write(*args, **kwargs):
        Path("writing").touch()
        deadline = time.monotonic() + 120
        while not Path("go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return write(*args, **kwargs)

    h5write.write = waiting_write
"""


@pytest.mark.slow
def test_two_doits_of_different_runs_run_at_once_and_share_the_data(folder, tmp_path):
    """The second doit's data stage waits for the first's (which holds the data's lock), then
    both runs train; they share one data folder and one initial weights' folder (whose writer
    the second may wait for too, as the two race to it)."""
    from tests.hooks import hook

    make_project(folder, tiny())
    env = hook(tmp_path, DATA_WAITS_FOR_GO)
    first = subprocess.Popen([sys.executable, "-m", "doit"], cwd=folder, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (folder / "writing").exists():  # the first's data stage holds the data's lock
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.02)
    with open(tmp_path / "second.err", "w+") as second_log:
        second = subprocess.Popen([sys.executable, "-m", "doit", "training.learning_rate=0.02"],
                                  cwd=folder, env=env, stdout=subprocess.DEVNULL,
                                  stderr=second_log, text=True)
        while "waiting for " not in (tmp_path / "second.err").read_text():
            assert second.poll() is None and time.monotonic() < deadline, (
                (tmp_path / "second.err").read_text())
            time.sleep(0.02)
        (folder / "go").touch()  # the first's data stage writes now, then the second's
        _, first_err = first.communicate(timeout=300)
        second.wait(timeout=300)
    second_err = (tmp_path / "second.err").read_text()
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second_err
    base = layout_of(folder, tiny())
    waiting = [line for line in second_err.splitlines() if line.startswith("waiting for ")]
    assert "python -m bert data" in waiting[0], second_err
    assert waiting[0].endswith(f", which writes {base.data_dir.relative_to(folder)}")
    # then, if it gets there while the first's init stage writes, for the weights they share
    init = f"python -m bert init --params params.yaml --run params), which writes " \
           f"{(folder / 'artifacts/init' / base.init).relative_to(folder)}"
    assert all(line.endswith(init) for line in waiting[1:]) and len(waiting) <= 2, second_err
    assert [p.name for p in (folder / "data").iterdir()] == [base.data]
    assert [p.name for p in (folder / "artifacts/init").iterdir()] == [base.init]
    for run in ("params", "params+learning_rate@0.02"):
        assert json.loads((folder / "artifacts/runs" / run / "results.json").read_text())


# A doit that waits after the data stage until a file ``go`` appears.
WAIT_AFTER_DATA = """

import time
from pathlib import Path

import doit.runner

_process_task_result = doit.runner.Runner.process_task_result


def _wait_after_data(self, node, base_fail):
    _process_task_result(self, node, base_fail)
    if node.task.name.startswith("data:"):
        Path("between").touch()
        while not Path("go").exists():
            time.sleep(0.02)


doit.runner.Runner.process_task_result = _wait_after_data
"""


@pytest.mark.slow
@pytest.mark.parametrize("taken", [False, True], ids=["removed", "taken by another"])
def test_a_run_s_lock_file_removed_between_stages(folder, taken):
    """doit holds the lock of its run from its first stage to its end: its file removed
    between two stages is taken again, or, taken by another process, stops doit."""
    make_project(folder, tiny())
    (folder / "dodo.py").write_text((folder / "dodo.py").read_text() + WAIT_AFTER_DATA)
    layout = layout_of(folder, tiny())
    run = subprocess.Popen([sys.executable, "-m", "doit", "data", "init"], cwd=folder,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (folder / "between").exists():
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    layout.run_lock.unlink()  # "a stale lock file"
    holder = start_holder(folder, lock=layout.run_lock) if taken else None
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
        assert ("error: the run params is in use by another workflow process "
                f"(pid {holder.pid}") in err
        assert not layout.init_weights.exists()
    else:  # doit takes the new lock file and goes on
        assert run.returncode == 0, err
        assert layout.init_weights.exists()


def test_a_record_naming_impossible_pids_is_no_crash(folder):
    (folder / LOCK_FILE).write_text("9999999999\n0\n")  # numbers no live process has
    with take_lock():
        assert (folder / LOCK_FILE).read_text().startswith(f"{os.getpid()} ")
    holder = start_holder(folder)
    try:
        wait_held(holder)
        with open(folder / LOCK_FILE, "a") as record:
            record.write("9999999999 ghost\n")
        assert f"(pid {holder.pid}: python -c" in take(folder).stderr
    finally:
        stop(holder)
