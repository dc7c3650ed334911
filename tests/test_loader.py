"""params.yaml: the schema (bert.workflow.params, bert.data.params) and its loader
(bert.workflow.loader): defaults, types, ranges, consistency, and one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from bert.data.params import DataParams
from bert.errors import ParamsError
from bert.fields import describe
from bert.workflow.loader import build_section, load_params
from bert.workflow.params import ModelParams, Params


def load_text(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_params(path)


def error_of(tmp_path, text) -> str:
    with pytest.raises(ParamsError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "params.yaml"))
    return message


def test_defaults(tmp_path):
    assert load_text(tmp_path, "") == Params()
    assert load_text(tmp_path, "data:\n") == Params()
    assert load_text(tmp_path, "data: {}\n").data == DataParams()


def test_values_are_read_and_converted(tmp_path):
    params = load_text(tmp_path, "data:\n  vocab_size: 32\n  mask_probability: 1\n"
                                 "  concentration: 5e-1\n")
    assert params.data.vocab_size == 32
    assert params.data.mask_probability == 1.0 and isinstance(params.data.mask_probability, float)
    assert params.data.concentration == 0.5  # YAML 1.1 reads 5e-1 as a string; accepted
    assert params.data.batch_size == DataParams().batch_size


def test_unknown_key_suggests_the_closest(tmp_path):
    message = error_of(tmp_path, "data:\n  mask_probabilty: 0.2\n")
    assert ("data.mask_probabilty is not a known parameter; "
            "did you mean 'mask_probability'?") in message
    assert "did you mean 'data'?" in error_of(tmp_path, "dta:\n  vocab_size: 8\n")


@pytest.mark.parametrize(("text", "expected"), [
    ("vocab_size: true", "data.vocab_size is True; set it to an integer"),
    ("vocab_size: 64.0", "data.vocab_size is 64.0; set it to an integer"),
    ("mask_probability: yes", "data.mask_probability is True; set it to a number"),
    ("mask_probability: high", "data.mask_probability is 'high'; set it to a number"),
    ("mask_probability: 1.5", "data.mask_probability is 1.5, outside (0.0, 1.0]"),
    ("mask_probability: 0", "data.mask_probability is 0.0, outside (0.0, 1.0]"),
    ("mask_probability: .nan", "data.mask_probability is nan; set it to a finite number"),
    ("vocab_size: 5", "data.vocab_size is 5, outside [6, 65536]"),
    ("vocab_size: 5000", "data.vocab_size is 5000; the synthetic language has at most 4096"),
    ("sequence_length: 4", "data.sequence_length is 4, outside [5, 4096]"),
    ("batch_size: 0", "data.batch_size is 0, outside [1, inf]"),
    ("vocab_size: 8\n  successors: 5", "data.successors is 5 but there are only 4 content tokens"),
    ("sentence_task: mlm", "data.sentence_task is 'mlm'; set it to one of nsp, sop, none"),
    ("sentence_task: NSP", "data.sentence_task is 'NSP'; set it to one of nsp, sop, none"),
    ("masking: fresh", "data.masking is 'fresh'; set it to one of static, dynamic"),
    ("masking: true", "data.masking is True; set it to a string"),
])
def test_bad_values_name_the_key_and_the_fix(tmp_path, text, expected):
    assert expected in error_of(tmp_path, f"data:\n  {text}\n")


def test_without_a_sentence_task_the_mlm_loss_must_count(tmp_path):
    text = "data:\n  sentence_task: none\ntraining:\n  mlm_loss_weight: 0\n"
    assert ("training.mlm_loss_weight is 0 and data.sentence_task is none, which has no sentence "
            "loss: nothing would be trained; make it positive") in error_of(tmp_path, text)


def test_picture_formats_are_png_and_or_svg(tmp_path):
    assert Params().plots.formats == ("png",)
    assert load_text(tmp_path, "plots:\n  formats: [svg, png]\n").plots.formats == ("svg", "png")
    assert load_text(tmp_path, "plots:\n  formats: svg\n").plots.formats == ("svg",)


@pytest.mark.parametrize(("text", "expected"), [
    ("formats: [png, jpg]", "plots.formats has 'jpg', not a picture format; list png and/or svg"),
    ("formats: []", "plots.formats is empty; list png and/or svg"),
    ("formats: [svg, svg]", "plots.formats names svg twice; list each format once"),
    ("formats: [1]", "plots.formats is [1]; set it to a list of strings"),
])
def test_bad_picture_formats_name_the_key_and_the_fix(tmp_path, text, expected):
    assert error_of(tmp_path, f"plots:\n  {text}\n").endswith(expected)


def test_structure_errors(tmp_path):
    assert "data must be a mapping" in error_of(tmp_path, "data: 3\n")
    assert "top level must be a mapping" in error_of(tmp_path, "- data\n")


def test_missing_file_and_bad_yaml(tmp_path, yaml_loader):
    with pytest.raises(ParamsError, match=r"nope.yaml: file not found"):
        load_params(tmp_path / "nope.yaml")
    message = error_of(tmp_path, "data:\n  vocab_size: 8\n\tbatch_size: 3\n")
    assert "invalid YAML at line 3, column 1" in message and message.endswith("fix the syntax")


def test_sections_are_frozen_and_export_sorted_dicts():
    params = DataParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.vocab_size = 8  # type: ignore[misc]
    exported = params.to_dict()
    assert list(exported) == sorted(exported)
    assert exported["mask_probability"] == 0.15
    assert Params().to_dict()["data"] == exported
    assert build_section(DataParams, exported, "data") == params


def test_every_parameter_is_documented():
    rows = describe(DataParams)
    assert [key for key, _, _ in rows] == [f.name for f in dataclasses.fields(DataParams)]
    assert all(len(help_text) > 20 for _, _, help_text in rows)
    required = {"random_seed", "vocab_size", "sequence_length", "batch_size", "num_train_batches",
                "num_test_batches", "mask_probability"}
    assert required <= {key for key, _, _ in rows}


def test_subset_takes_sections_single_keys_and_leaves_keys_out():
    params = Params()
    assert params.subset(()) == {}
    assert params.subset(("model",)) == {"model": params.model.to_dict()}
    assert params.subset(("data.vocab_size", "training.dtype")) == {
        "data": {"vocab_size": 64}, "training": {"dtype": "float32"}}
    assert params.subset(("evaluation",))["evaluation"] == {"batch_size": 256,
                                                             "train_examples": 4096}
    training = params.subset(("training", "-training.threads"))["training"]
    assert training == {key: value for key, value in params.training.to_dict().items()
                        if key != "threads"}


def test_model_parameters_explain_themselves_with_the_config_s_own_words():
    helps = {key: text for key, _, text in describe(ModelParams)}
    assert helps["dim_model"] == ("H: width of every token representation "
                                  "(BertConfig.hidden_size)")
    assert helps["hidden_dropout"].startswith("dropout on embeddings and on every residual branch")


# --- the YAML reader: libyaml's, and PyYAML's own without it -----------------------------------

@pytest.fixture(params=["libyaml", "python"])
def yaml_loader(request, monkeypatch):
    """The loader parse_yaml reads with: libyaml's parser (where PyYAML has it), then PyYAML's
    own in Python, which is used without libyaml."""
    import yaml

    from bert.workflow import yamlfile

    if request.param == "python":
        monkeypatch.setattr(yamlfile, "UniqueKeyLoader", yamlfile.PythonUniqueKeyLoader)
    elif not yaml.__with_libyaml__:
        pytest.skip("this PyYAML has no libyaml")
    return yamlfile.UniqueKeyLoader


def test_libyaml_reads_where_pyyaml_has_it():
    import yaml

    from bert.workflow.yamlfile import UniqueKeyLoader

    assert issubclass(UniqueKeyLoader, yaml.CSafeLoader) == yaml.__with_libyaml__


def test_without_libyaml_pyyaml_s_own_parser_reads(monkeypatch):
    import importlib.util

    import yaml

    import bert.workflow.yamlfile

    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    spec = importlib.util.spec_from_file_location("yamlfile_alone",
                                                  bert.workflow.yamlfile.__file__)
    alone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(alone)
    assert alone.UniqueKeyLoader is alone.PythonUniqueKeyLoader
    assert alone.parse_yaml("a: {b: [1, 2]}\n", "x") == {"a": {"b": [1, 2]}}
    with pytest.raises(ParamsError, match=r"^x: key 'b' appears twice, at lines 2 and 3"):
        alone.parse_yaml("a:\n  b: 1\n  b: 2\n", "x")


@pytest.mark.parametrize("nest", [lambda n: "[" * n + "]" * n,
                                  lambda n: "".join("  " * i + "a:\n" for i in range(n))],
                         ids=["flow-lists", "block-mappings"])
def test_nesting_is_read_to_max_depth_and_refused_past_it(yaml_loader, nest):
    from bert.workflow.yamlfile import MAX_DEPTH, parse_yaml

    assert parse_yaml(nest(MAX_DEPTH), "x")
    for depth in (MAX_DEPTH + 1, 400):  # the walk refuses it, or the parser cannot take it
        with pytest.raises(ParamsError, match=r"^x: nested too deeply to be read; fix the file$"):
            parse_yaml(nest(depth), "x")


def test_a_command_line_that_is_not_utf_8_is_invalid_yaml(yaml_loader):
    from bert.workflow.yamlfile import parse_yaml

    with pytest.raises(ParamsError, match=r"^x: invalid YAML \(ReaderError\); fix the syntax$"):
        parse_yaml(b"a: \xff".decode("utf-8", "surrogateescape"), "x")


# --- keys given twice, in any form ------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("data: {vocab_size: 16, vocab_size: 32}\n",
     "key 'vocab_size' appears twice, on line 1, at columns 8 and 24"),
    ("{data: {vocab_size: 16}, data: {batch_size: 4}}\n",
     "key 'data' appears twice, on line 1, at columns 2 and 26"),
    ("data:\n  vocab_size: 16\n  batch_size: 4\ndata: {vocab_size: 32}\n",
     "key 'data' appears twice, at lines 1 and 4"),
    ("training: {epochs: 2, 'epochs': 3}\n", "key 'epochs' appears twice, on line 1"),
    ("training:\n  epochs: 2\n  learning_rate: 0.1\n  epochs: 3\n",
     "key 'epochs' appears twice, at lines 2 and 4"),
])
def test_a_key_given_twice_is_refused_in_flow_mappings_too(tmp_path, yaml_loader, text,
                                                           expected):
    assert expected in error_of(tmp_path, text)


def test_merge_keys_may_still_override_what_they_merge(yaml_loader):
    import yaml

    text = ("base: &b {x: 1, y: 1}\nmid: &m {<<: *b, x: 2}\ntop:\n  <<: *m\n  y: 3\n"
            "flow: {<<: *b, y: 4}\n")
    loaded = yaml.load(text, Loader=yaml_loader)
    assert loaded == yaml.safe_load(text)  # what PyYAML makes of them, refused nowhere
    assert loaded["mid"] == {"x": 2, "y": 1} and loaded["flow"] == {"x": 1, "y": 4}


def test_a_key_may_be_given_once_in_each_mapping(yaml_loader):
    import yaml

    text = "a: {x: 1}\nb: {x: 2}\nbase: &b {y: 1}\nc:\n  <<: *b\n  y: 2\n"
    assert yaml.load(text, Loader=yaml_loader) == {"a": {"x": 1}, "b": {"x": 2},
                                                   "base": {"y": 1}, "c": {"y": 2}}


def test_keys_are_checked_in_mappings_used_as_keys_and_through_recursive_aliases(yaml_loader):
    import yaml

    with pytest.raises(ParamsError, match=r"key 'a' appears twice, on line 1, at columns 4 and 10"):
        yaml.load("? {a: 1, a: 2}\n: 1\n", Loader=yaml_loader)
    loaded = yaml.load("a: &a [1, {b: *a}]\n", Loader=yaml_loader)
    assert loaded["a"][1]["b"] is loaded["a"]
    with pytest.raises(ParamsError, match=r"key 'b' appears twice, on line 1, at columns 12 and"):
        yaml.load("a: &a [1, {b: *a, b: 2}]\n", Loader=yaml_loader)



def test_a_key_tagged_as_a_list_is_invalid_yaml_not_a_crash(tmp_path, yaml_loader):
    message = error_of(tmp_path, "data: {!!seq a: 1, !!seq a: 2}\n")
    assert "invalid YAML at line 1, column 8 (expected a sequence node, but found" in message


# --- files made to hurt the reader --------------------------------------------------------------

def alias_bomb(levels: int = 9) -> str:
    """A YAML list whose printed form has 9**levels items, in a few hundred bytes."""
    items = ['&a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        items.append(f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "[" + ", ".join(items) + "]"


@pytest.mark.parametrize("where", ["data:\n  vocab_size: {}\n", "data: {}\n"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, yaml_loader, where):
    import time

    text = where.format(alias_bomb())
    assert len(text) < 1000
    started = time.perf_counter()
    assert len(error_of(tmp_path, text)) < 400 + len(str(tmp_path))
    assert time.perf_counter() - started < 2


def test_a_huge_integer_is_said_in_a_short_line(tmp_path, yaml_loader):
    message = error_of(tmp_path, "data:\n  random_seed: " + "9" * 5000 + "\n")
    assert "params.yaml: a value cannot be read" in message
    assert len(message) < 400 + len(str(tmp_path))


@pytest.mark.parametrize(("text", "expected"), [
    ("\x00\xff\xfe binary", "params.yaml: "),
    ("data: " + "[" * 5000 + "]" * 5000, "nested too deeply to be read"),
    ("data:\n  vocab_size: 1e400\n", "data.vocab_size is '1e400'; set it to an integer"),
    ("data:\n  concentration: 1e400\n", "data.concentration is inf"),
])
def test_text_no_parameters_file_holds_is_one_line(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


# --- what cannot be a parameters file ---------------------------------------------------------

def load_at_once(path) -> str:
    """The error of loading ``path``, which must come at once (never a read that blocks)."""
    import threading

    errors: list[str] = []

    def load():
        try:
            load_params(path)
        except ParamsError as error:
            errors.append(str(error))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=10)
    assert not loader.is_alive(), f"loading {path} blocks"
    assert len(errors) == 1 and "\n" not in errors[0]
    return errors[0]


def test_a_device_a_pipe_a_folder_or_a_huge_file_is_refused_at_once(tmp_path):
    import os

    assert load_at_once("/dev/zero") == ("/dev/zero: is a character device, not a file for "
                                         "parameters; pass the YAML file of the parameters")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    assert "zero.yaml: is a character device, not a file" in load_at_once(tmp_path / "zero.yaml")
    os.mkfifo(tmp_path / "fifo.yaml")
    assert "fifo.yaml: is a named pipe (FIFO), not a file" in load_at_once(tmp_path / "fifo.yaml")
    assert f"{tmp_path}: is a folder, not a file" in load_at_once(tmp_path)
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as file:
        file.truncate(12 << 30)  # sparse: 12 GiB that take no disk
    assert "huge.yaml: is 12,884,901,888 bytes, more than such a file can be (1,048,576)" in (
        load_at_once(huge))


# --- values no path, command or machine can take ----------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("data:\n  source: text\n  text_files: [\"a\\0.txt\"]\n", "data.text_files is ('a\\x00.txt',),"
     " with a NUL character"),
    ("model:\n  init_from: \"w\\0.h5\"\n", "model.init_from is 'w\\x00.h5', with a NUL character"),
    ("training:\n  mpiexec: \"mpiexec 'unterminated\"\n",
     "training.mpiexec is \"mpiexec 'unterminated\", which cannot be split into words (No "
     "closing quotation); fix its quotes"),
    ("training:\n  threads: 1000000\n", "training.threads is 1000000, outside [0, 1024]"),
    ("logging:\n  backup_count: 1000000000\n",
     "logging.backup_count is 1000000000, outside [0, 1000]"),
])
def test_values_that_would_fail_later_are_refused_with_the_key(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


# --- parameters of earlier versions ----------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("logging:\n  file: artifacts/logs/bert.log\n",
     "logging.file is no longer a parameter: each stage logs into the folder it writes, a run's "
     "stages into artifacts/runs/<run>/log.txt; remove it"),
    ("evaluation:\n  results_file: artifacts/results.json\n",
     "evaluation.results_file is no longer a parameter: each run writes its results to "
     "artifacts/runs/<run>/results.json; remove it"),
    ("evaluation:\n  results_file: \"artifacts/r\\0.json\"\n",
     "evaluation.results_file is no longer a parameter"),
])
def test_a_retired_key_says_where_its_file_goes_now(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


# --- the memory estimate names the keys that matter -------------------------------------------

def resource_error_of(tmp_path, text) -> str:
    from bert.errors import ResourceError

    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ResourceError) as info:
        load_params(path)
    return str(info.value)


def test_text_data_is_not_held_to_the_synthetic_language_s_memory():
    text = {"source": "text", "text_files": ["corpus/*.txt"], "vocab_size": 30522}
    assert build_section(DataParams, text, "data").vocab_size == 30522
    from bert.workflow.loader import params_from_mapping

    assert params_from_mapping({"data": text}).data.vocab_size == 30522  # BERT's own: fine


@pytest.mark.parametrize(("data", "expected"), [
    ({"batch_size": 10**12}, "the data stage needs ~"),
    ({"batch_size": 10**12, "source": "text", "text_files": ["a.txt"]}, "the train stage needs ~"),
    ({"num_train_batches": 10**9}, "the data stage needs ~"),
])
def test_the_advice_names_the_keys_behind_the_estimate(tmp_path, data, expected):
    import yaml

    message = resource_error_of(tmp_path, yaml.safe_dump({"data": data}))
    assert expected in message
    assert "data.num_topics" not in message
    assert "data.batch_size" in message if "batch_size" in data else "num_train_batches" in message
