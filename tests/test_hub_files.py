""".runpod/hub.json and tests.json: the documented shape, and agreement with the worker itself.

The schemas in tests/schemas hold the fields of RunPod's Hub publishing guide; the other checks tie
the files to worker.settings and worker.schemas, so a renamed setting or a changed input model
breaks here rather than on a Hub build.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import annotated_types
import jsonschema
import pytest
from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from client import deploy
from rules.parser import parse_rule
from worker.intake import IntakeLimits, decode_base64
from worker.schemas import AnalyzeInput, HealthInput, ParseRulesInput
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# SPEC 5: every variable of the three production stores, and their shared knobs.
STORE_VARIABLES = {
    "MONGODB_URI",
    "MONGODB_DB",
    "R2_ENDPOINT_URL",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_BUCKET",
    "R2_REGION",
    "PRESIGN_TTL_S",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
    "CACHE_TTL_S",
    "CACHE_MAX_ENTRY_BYTES",
    "STORE_TIMEOUT_S",
    "SIMILAR_SCAN_LIMIT",
    "VECTOR_INDEX",
}
SECRET_MARKERS = ("KEY", "SECRET", "PASSWORD", "URI")
# Serverless GPU pools and their GPU types, from runpod/docs references/gpu-types.mdx (commit
# a900806e); v2 takes pool ids as they are (GET /v2/catalog/gpus gives each GPU's pool).
DOCUMENTED_POOLS = {
    "AMPERE_16": ["NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX 4000 Ada Generation"],
    "AMPERE_24": ["NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"],
    "ADA_24": ["NVIDIA GeForce RTX 4090"],
    "AMPERE_48": ["NVIDIA RTX A6000", "NVIDIA A40"],
    "ADA_48_PRO": ["NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation"],
    "AMPERE_80": ["NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"],
    "ADA_80_PRO": ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL"],
    "HOPPER_141": ["NVIDIA H200"],
}
INPUT_MODELS = {"analyze": AnalyzeInput, "parse_rules": ParseRulesInput, "health": HealthInput}


def load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / ".runpod" / name).read_text())


def env_names() -> dict[str, str]:
    """Every variable the worker reads -> its settings field (names upper-cased, plus aliases)."""
    names: dict[str, str] = {}
    for field_name, info in Settings.model_fields.items():
        names[field_name.upper()] = field_name
        if isinstance(info.validation_alias, AliasChoices):
            names.update({str(alias): field_name for alias in info.validation_alias.choices})
    return names


def hub_inputs() -> dict[str, dict[str, Any]]:
    return {entry["key"]: entry["input"] for entry in load("hub.json")["config"]["env"]}


def is_secret(key: str) -> bool:
    return any(marker in key for marker in SECRET_MARKERS) or key == "REDIS_URL"


def env_value(spec: dict[str, Any]) -> str:
    """The string the Hub puts in the environment for an input's default."""
    default = spec["default"]
    if isinstance(default, bool):
        return spec["trueValue"] if default else spec["falseValue"]
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def hub_type(info: FieldInfo) -> str:
    """The Hub input type a settings field needs: booleans and numbers as such, the rest text."""
    kinds = set(typing.get_args(info.annotation) or [info.annotation]) - {type(None)}
    if kinds == {bool}:
        return "boolean"
    return "number" if kinds <= {int, float} else "string"


def bound(info: FieldInfo, kind: type) -> float | None:
    for item in info.metadata:
        if isinstance(item, kind):
            return item.ge if kind is annotated_types.Ge else item.le
    return None


@pytest.fixture
def no_worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment: a variable set on this machine must not decide a test."""
    for name in env_names():
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", ["hub", "tests"])
def test_file_matches_the_documented_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(load(f"{name}.json"))


def test_schemas_refuse_fields_the_docs_do_not_list() -> None:
    schema = json.loads((SCHEMAS / "hub.schema.json").read_text())
    hub = load("hub.json")
    hub["config"]["env"][0]["input"]["placeholder"] = "x"
    with pytest.raises(jsonschema.ValidationError, match="placeholder"):
        jsonschema.validate(hub, schema)


def test_hub_runs_on_the_gpus_and_cuda_the_image_needs() -> None:
    config = load("hub.json")["config"]
    pools = config["gpuIds"].split(",")
    assert deploy.gpu_pools(pools) == pools
    assert set(deploy.DEFAULT_GPUS) <= set(pools) <= set(DOCUMENTED_POOLS)
    assert pools[-1] == "ADA_24", "a cheaper pool the worker's load fits, last (README)"
    assert config["allowedCudaVersions"] == [deploy.MIN_CUDA_VERSION]
    assert config["containerDiskInGb"] == deploy.CONTAINER_DISK_GB
    assert config["gpuCount"] == 1


def test_every_hub_variable_is_a_worker_setting_and_every_setting_is_offered() -> None:
    keys = [entry["key"] for entry in load("hub.json")["config"]["env"]]
    names = env_names()
    assert {"MONGODB_ATLAS_URI", "R2_BUCKET_NAME"} <= set(names)
    assert len(keys) == len(set(keys)), "a variable is listed twice"
    assert set(keys) <= set(names), f"not read by the worker: {set(keys) - set(names)}"
    offered = {names[key] for key in keys}
    assert offered == set(Settings.model_fields), "settings missing from hub.json"
    assert set(keys) >= STORE_VARIABLES


def test_hub_inputs_have_the_settings_types_bounds_and_options() -> None:
    names = env_names()
    for key, spec in hub_inputs().items():
        info = Settings.model_fields[names[key]]
        assert spec["type"] == hub_type(info), key
        assert spec.get("min") == bound(info, annotated_types.Ge), key
        assert spec.get("max") == bound(info, annotated_types.Le), key
        assert spec["required"] is False, key
        if typing.get_origin(info.annotation) is typing.Literal:
            values = [option["value"] for option in spec["options"]]
            assert values == list(typing.get_args(info.annotation)), key
        if spec["type"] == "boolean":
            assert (spec["trueValue"], spec["falseValue"]) == ("true", "false"), key


@pytest.mark.usefixtures("no_worker_env")
def test_hub_defaults_are_the_worker_defaults() -> None:
    """Each default, as the Hub writes it into the environment, reads back as Settings' own."""
    names = env_names()
    defaults = Settings()
    checked = 0
    for key, spec in hub_inputs().items():
        if "default" in spec:
            field_name = names[key]
            parsed = Settings(**{field_name: env_value(spec)})
            assert getattr(parsed, field_name) == getattr(defaults, field_name), key
            checked += 1
    assert checked >= 25


def test_secrets_and_unset_stores_have_no_default() -> None:
    """A default secret would be deployed as is; an unset store means the embedded one."""
    names = env_names()
    for key, spec in hub_inputs().items():
        if is_secret(key):
            assert "default" not in spec, key
            assert spec["type"] == "string", key
        if Settings.model_fields[names[key]].default is None:
            assert "default" not in spec, key


def test_tests_json_covers_analyze_parse_rules_and_health() -> None:
    tests = load("tests.json")
    actions = [case["input"].get("action", "analyze") for case in tests["tests"]]
    assert sorted(actions) == ["analyze", "health", "parse_rules"]
    assert len({case["name"] for case in tests["tests"]}) == len(tests["tests"])
    config = tests["config"]
    pools = load("hub.json")["config"]["gpuIds"].split(",")
    assert any(config["gpuTypeId"] in DOCUMENTED_POOLS[pool] for pool in pools)
    assert config["allowedCudaVersions"] == [deploy.MIN_CUDA_VERSION]


@pytest.mark.usefixtures("no_worker_env")
@pytest.mark.parametrize("case", load("tests.json")["tests"], ids=lambda case: case["name"])
def test_tests_json_inputs_are_valid_jobs(case: dict[str, Any]) -> None:
    job = case["input"]
    parsed = INPUT_MODELS[job.get("action", "analyze")].model_validate(job)
    if isinstance(parsed, ParseRulesInput | AnalyzeInput):
        for rule in parsed.rules or []:
            if isinstance(rule, str):
                parse_rule(rule)
    if isinstance(parsed, AnalyzeInput):
        assert parsed.image is not None and parsed.options.imgsz == 320
        image = decode_base64(
            parsed.image, field="image", limits=IntakeLimits.from_settings(Settings())
        )
        assert (image.format, image.width, image.height) == ("jpeg", 64, 48)


@pytest.mark.usefixtures("no_worker_env")
def test_tests_json_env_is_valid_worker_configuration() -> None:
    names = env_names()
    env = {item["key"]: item["value"] for item in load("tests.json")["config"]["env"]}
    assert set(env) <= set(names)
    Settings(**{names[key]: value for key, value in env.items()})


# The worker a Hub build starts, as RunPod starts it: the fitness check, then each tests.json job.
HUB_PROBE = """
import asyncio, json, sys, time
import handler
handler.models_and_stores_ready()
with open(sys.argv[1]) as tests:
    cases = json.load(tests)["tests"]
for case in cases:
    start = time.perf_counter()
    output = asyncio.run(handler.handler({"id": case["name"], "input": case["input"]}))
    took_ms = (time.perf_counter() - start) * 1000
    print(json.dumps({"name": case["name"], "output": output, "took_ms": took_ms}))
"""


@pytest.mark.slow
def test_every_tests_json_job_passes_on_the_models_a_hub_build_holds(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    """A Hub build bakes fetch_models.py's models into MODEL_DIR (.runpod/Dockerfile); here the
    demo models stand in for the production ones: same script, same layout, same loading code."""
    from tests.test_handler import run_in_repo, worker_env

    env = worker_env(demo_model_dir, tmp_path / "data")
    env.update({item["key"]: item["value"] for item in load("tests.json")["config"]["env"]})
    completed = run_in_repo(
        ["-c", HUB_PROBE, str(ROOT / ".runpod" / "tests.json")], env, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    answers = {
        answer["name"]: answer
        for answer in map(json.loads, completed.stdout.strip().splitlines()[-3:])
    }
    cases = {case["name"]: case for case in load("tests.json")["tests"]}
    assert set(answers) == set(cases)
    for name, answer in answers.items():
        assert "error" not in answer["output"], (name, answer["output"])
        assert answer["took_ms"] < cases[name]["timeout"], name
    assert answers["health"]["output"]["status"] == "ok"
    assert answers["parse_rules"]["output"]["rules"][0]["type"] == "min_distance"
    assert answers["analyze_small_jpeg"]["output"]["persisted"]["record"] is True
