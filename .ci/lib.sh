# shellcheck shell=bash
# What .ci/run and .ci/freeze share: which Pythons CI runs, with which extras, and how a fresh
# virtual environment is made from the project's own files.

# The reference (torch 2.13.0 CPU + transformers) on 3.11, the one Python its CPU wheel is for;
# every other extra on the oldest and the newest Python that requires-python allows.
REFERENCE_PYTHON=3.11
REFERENCE_EXTRAS="test,reference,interop,plots,text,mpi"
OTHER_PYTHONS=(3.10 3.13)
OTHER_EXTRAS="test,interop,plots,text,mpi"

find_python() {  # the interpreter of Python $1 (e.g. 3.10): on PATH, else pyenv's
    local candidate
    for candidate in "python$1" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1"; do
        if "$candidate" -c 'import venv' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: no Python $1 found on PATH or under pyenv; install it to run CI" >&2
    return 1
}

make_venv() {  # make_venv PYTHON_VERSION EXTRAS FOLDER [pip options...]: a fresh venv in FOLDER
    local python
    python="$(find_python "$1")" || return 1
    "$python" -m venv "$3" || return 1
    "$3/bin/python" -m pip install --quiet --upgrade pip || return 1
    "$3/bin/python" -m pip install --quiet "${@:4}" -e ".[$2]"
}
