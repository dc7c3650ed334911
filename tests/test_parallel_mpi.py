"""The MPI reduction on 1 to 4 ranks (oversubscribed on a small machine): the same step, bit
for bit, as one process computing every micro-batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bert.parallel.mpi import mpi_available
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
    out = tmp_path / f"step-{processes}.npz"
    command = [sys.executable, "-c", STEP, str(out)]
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
