"""The MPI reduction on 1 to 4 ranks (oversubscribed on a small machine): the same step, bit
for bit, as one process computing every micro-batch; and the same steps for 1 or 2 processes of
1, 2 or 3 compute threads each, with the micro-batches on the threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bert.parallel.extra import mpi_available
from bert.workflow.launch import find_launcher

pytestmark = pytest.mark.skipif(not mpi_available(),
                                reason='needs the mpi extra: pip install -e ".[mpi]"')

# One float32 step with dropout over 12 micro-batches, on every rank; rank 0 saves the weights.
STEP = '''
import sys, copy
import numpy as np
from bert.core.config import BertConfig
from bert.core.parameters import init_params
from bert.core.optim import AdamWConfig, init_state
from bert.core.step import OneProcess, training_step
from bert.parallel.mpi import MpiReduction, world
from tests.test_step import batch_of

config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=12, max_position_embeddings=10, hidden_dropout_prob=0.1)
params = init_params(config, np.random.default_rng(0))
optimizer = init_state(params)
comm = world()
reduction = MpiReduction(comm) if comm.Get_size() > 1 else OneProcess()
result = training_step(params, config, batch_of(24), optimizer, lr=1e-2, adamw=AdamWConfig(),
                       max_grad_norm=1.0, rng=lambda i: np.random.default_rng([3, i]),
                       micro_batches=12, reduction=reduction)
if comm.Get_rank() == 0:
    np.savez(sys.argv[1], loss=result.losses["total"], norm=result.grad_norm, **params)
'''


def run_step(tmp_path, processes: int) -> dict[str, np.ndarray]:
    return run_script(tmp_path / f"step-{processes}.npz", processes, STEP)


def run_script(out: Path, processes: int, script: str, *args: str) -> dict[str, np.ndarray]:
    """The arrays ``script`` saves to ``out`` (its first argument), run on ``processes``
    processes (under mpiexec from 2)."""
    command = [sys.executable, "-c", script, str(out), *args]
    if processes > 1:
        command = [*find_launcher("mpiexec"), "-n", str(processes), *command]
    subprocess.run(command, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    with np.load(out) as saved:
        return dict(saved)


@pytest.mark.slow
def test_one_to_four_ranks_take_the_same_step(tmp_path):
    one = run_step(tmp_path, 1)
    for processes in (2, 3, 4):
        other = run_step(tmp_path, processes)
        assert other.keys() == one.keys()
        for name in one:
            np.testing.assert_array_equal(other[name], one[name], err_msg=f"{processes}: {name}")


# Two float32 steps with dropout over M micro-batches on T compute threads per process (argv:
# output, M, T), as training runs them; rank 0 saves the weights and AdamW's moments.
THREADED_STEPS = '''
import sys
import numpy as np
from bert.core.config import BertConfig
from bert.core.parameters import init_params
from bert.core.optim import AdamWConfig, init_state
from bert.core.step import OneProcess, training_step
from bert.engine.allocation import keep_freed_memory
from bert.engine.pool import set_threads
from bert.parallel.mpi import MpiReduction, world
from tests.test_step import batch_of

out, micro_batches, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keep_freed_memory()
set_threads(threads)
config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=12, max_position_embeddings=10, hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1)
params = init_params(config, np.random.default_rng(0))
optimizer = init_state(params)
comm = world()
reduction = MpiReduction(comm) if comm.Get_size() > 1 else OneProcess()
for step in range(2):
    training_step(params, config, batch_of(24, seed=step), optimizer, lr=1e-2,
                  adamw=AdamWConfig(), max_grad_norm=1.0,
                  rng=lambda i, step=step: np.random.default_rng([3, step, i]),
                  micro_batches=micro_batches, reduction=reduction)
if comm.Get_rank() == 0:
    np.savez(out, params=params.flat, exp_avg=optimizer["exp_avg"].flat,
             exp_avg_sq=optimizer["exp_avg_sq"].flat)
'''


def run_threaded_steps(tmp_path, processes: int, micro_batches: int,
                       threads: int) -> dict[str, np.ndarray]:
    return run_script(tmp_path / f"steps-{processes}x{threads}-{micro_batches}.npz", processes,
                      THREADED_STEPS, str(micro_batches), str(threads))


@pytest.mark.slow
@pytest.mark.parametrize("micro_batches", [2, 4])
def test_one_or_two_processes_of_one_to_three_threads_take_the_same_steps(tmp_path,
                                                                          micro_batches):
    one = run_threaded_steps(tmp_path, 1, micro_batches, 1)
    for processes, threads in [(1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]:
        other = run_threaded_steps(tmp_path, processes, micro_batches, threads)
        for name in ("params", "exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(other[name], one[name],
                                          err_msg=f"{processes} x {threads}: {name}")


def test_an_mpi_that_cannot_be_imported_is_one_line_naming_the_rank(monkeypatch):
    from bert.errors import MissingExtraError
    from bert.parallel.mpi import world

    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as an mpi4py that fails to import
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setenv("PMI_SIZE", "2")
    with pytest.raises(MissingExtraError, match="^rank 1 of 2: the MPI library cannot be loaded "
                       r"\(import of mpi4py halted; None in sys.modules\); install it") as info:
        world()
    assert "\n" not in str(info.value)
