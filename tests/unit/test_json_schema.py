"""The JSON Schema files that ship with the package: what the dataclasses make, and they agree with the
harness's own readers on files the harness wrote and on damaged ones (checked here with the jsonschema
library, another implementation)."""
import json

import jsonschema
import pytest

from harness.store.json_schema import FILES, SCHEMA_DIR, file_schema
from harness.store.paths import SweepPaths

from perf_helpers import entry, make_sweep, record


def validator(name: str) -> jsonschema.Draft202012Validator:
    # jsonschema checks "date-time" only with its format extra installed (the test extra asks for it)
    assert "date-time" in jsonschema.FormatChecker().checkers, "jsonschema[format-nongpl] is not installed"
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", FILES)
def test_the_shipped_schemas_are_what_the_dataclasses_make(name):
    """A field added to a dataclass without `python -m harness.store.json_schema` fails here."""
    assert json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()) == file_schema(name)


def test_the_files_the_harness_writes_are_valid_and_damaged_ones_are_not(tmp_path):
    from harness.store.submissions import Submission, record_submission

    sweep: SweepPaths = make_sweep(tmp_path, "s1", [record("ResNet50", sweep="s1"), record("VGG16", sweep="s1")])
    record_submission(sweep, Submission("slurm", "101", {"ResNet50-s0": "102_0", "VGG16-s0": "102_1"}))
    written = {"sweep": json.loads(sweep.spec.read_text()), "jobs": json.loads(sweep.jobs.read_text()),
               "result": json.loads(sweep.run("ResNet50-s0").result.read_text()), "perflog-line": entry().to_json()}
    for name, data in written.items():
        assert not list(validator(name).iter_errors(data)), name
    damaged = {"result": [{**written["result"], "test": {**written["result"]["test"], "accuracy": 1.5}},
                          {**written["result"], "surprise": 1}, {**written["result"], "seed": "0"},
                          {**written["result"], "finished_at": "yesterday"}],
               "sweep": [{**written["sweep"], "seeds": 0}, {k: v for k, v in written["sweep"].items() if k != "runs"}],
               "jobs": [{"submissions": [{"executor": "slurm", "preprocess_job": 101, "tasks": {}}]}],
               "perflog-line": [{**written["perflog-line"], "time": "soon"}]}
    for name, cases in damaged.items():
        for data in cases:
            assert list(validator(name).iter_errors(data)), (name, data)
