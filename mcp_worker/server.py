"""The worker's actions as MCP tools (SPEC 12), on the official ``mcp`` SDK (2.x, ``MCPServer``).

Each tool's parameters are the fields of the job's own input model (``worker.schemas``), taken
field by field with their types and constraints, so a tool cannot drift from the job it sends;
its output schema is the result's model where the worker has one (``AnalysisResult``,
``EvaluateResult``, ``StatsOut``, ``ListAnalysesOut``). A tool call becomes one job input, run by
the backend (the worker in this process, or a RunPod endpoint); a job's ``{"error": "code:
message"}`` comes back as an MCP tool error carrying that text.
"""

from __future__ import annotations

import base64
import inspect
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ImageContent, TextContent
from PIL import Image
from pydantic import BaseModel, Field
from pydantic_core import to_jsonable_python

from mcp_worker.backends import Backend, JobFailed
from worker.schemas import (
    AnalysisResult,
    AnalyzeInput,
    CameraNameInput,
    EvaluateInput,
    EvaluateResult,
    FindSimilarInput,
    HealthInput,
    ListAnalysesInput,
    ListAnalysesOut,
    ListCamerasInput,
    ListRuleSetsInput,
    ParseRulesInput,
    PutCameraInput,
    PutRuleSetInput,
    RuleSetNameInput,
    StatsInput,
    StatsOut,
)

THUMBNAIL_PX = 256
MAX_IMAGE_PATH_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ToolSpec:
    """One tool: the action it runs, the job model its parameters come from, what it returns."""

    name: str
    action: str
    model: type[BaseModel]
    output: type[BaseModel] | None
    description: str
    leave_out: tuple[str, ...] = ()


TOOLS = (
    ToolSpec(
        "analyze_image",
        "analyze",
        AnalyzeInput,
        AnalysisResult,
        "Find the mugs and objects in one desk photo, measure where each mug stands, judge it "
        "against placement rules and say how to move a mug that breaks one. Give the picture as "
        "image_path (a file on this server's machine), image_url, image (base64) or image_key; "
        "rules as sentences ('keep mugs 15 cm from laptops') or a stored rule_set; a stored "
        "camera profile or a calibration for millimetres. The annotated picture comes back as "
        "artifacts.annotated_url; thumbnail=true adds a small copy as image content.",
        leave_out=("images",),
    ),
    ToolSpec(
        "evaluate_rules",
        "evaluate",
        EvaluateInput,
        EvaluateResult,
        "Judge rules against given detections (boxes in pixels, with image_size) or a stored "
        "analysis_id, without running a model.",
    ),
    ToolSpec(
        "parse_rules",
        "parse_rules",
        ParseRulesInput,
        None,
        "Turn placement rule sentences into the structured rules the worker judges.",
    ),
    ToolSpec("put_rule_set", "put_rule_set", PutRuleSetInput, None, "Store a named rule set."),
    ToolSpec("get_rule_set", "get_rule_set", RuleSetNameInput, None, "Read a stored rule set."),
    ToolSpec("list_rule_sets", "list_rule_sets", ListRuleSetsInput, None, "List the rule sets."),
    ToolSpec(
        "delete_rule_set", "delete_rule_set", RuleSetNameInput, None, "Delete a stored rule set."
    ),
    ToolSpec(
        "put_camera",
        "put_camera",
        PutCameraInput,
        None,
        "Store a named camera profile: a calibration (mm per px, table points or an ArUco "
        "marker) and the table's outline, for jobs that name the camera.",
    ),
    ToolSpec("get_camera", "get_camera", CameraNameInput, None, "Read a camera profile."),
    ToolSpec("list_cameras", "list_cameras", ListCamerasInput, None, "List the camera profiles."),
    ToolSpec("delete_camera", "delete_camera", CameraNameInput, None, "Delete a camera profile."),
    ToolSpec(
        "find_similar",
        "find_similar",
        FindSimilarInput,
        None,
        "The stored analyses whose pictures look most like an image or a stored analysis "
        "(CLIP embeddings, cosine).",
    ),
    ToolSpec(
        "stats",
        "stats",
        StatsInput,
        StatsOut,
        "Compliance of the stored analyses grouped by day, rule or a metadata key "
        "('metadata.desk'), filtered by time and metadata.",
    ),
    ToolSpec(
        "list_analyses",
        "list_analyses",
        ListAnalysesInput,
        ListAnalysesOut,
        "The stored analyses, newest first, a page at a time (send next_cursor back as cursor).",
    ),
    ToolSpec("health", "health", HealthInput, None, "The worker's models, stores and versions."),
)


def tool_parameters(spec: ToolSpec) -> list[inspect.Parameter]:
    """The job model's fields (less ``action`` and what the tool leaves out) as keyword
    parameters carrying the same types, constraints, defaults and aliases."""
    parameters = []
    for name, field in spec.model.model_fields.items():
        if name == "action" or name in spec.leave_out:
            continue
        default = (
            inspect.Parameter.empty
            if field.is_required()
            else (field.default_factory() if field.default_factory else field.default)  # type: ignore[call-arg]
        )
        # the field's constraints and words; its default goes on the parameter
        words = Field(description=field.description, examples=field.examples)
        annotation = Annotated[field.annotation, *field.metadata, words]  # type: ignore[name-defined]
        parameters.append(
            inspect.Parameter(
                field.alias or name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=annotation,
            )
        )
    return parameters


def _thumbnail(data: bytes) -> ImageContent | None:
    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            buffer = io.BytesIO()
            picture.convert("RGB").save(buffer, format="JPEG", quality=80)
    except Exception:
        return None
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return ImageContent(type="image", data=encoded, mime_type="image/jpeg")


def _read_image_path(path: str) -> str:
    file = Path(path).expanduser()
    if not file.is_file():
        raise JobFailed(f"invalid_input: image_path: no file at {path[:200]!r}")
    if file.stat().st_size > MAX_IMAGE_PATH_BYTES:
        raise JobFailed(f"image_too_large: image_path: over {MAX_IMAGE_PATH_BYTES:,} bytes")
    return base64.b64encode(file.read_bytes()).decode()


def make_tool(spec: ToolSpec, backend: Backend) -> Callable[..., Awaitable[Any]]:
    """The tool function of one spec, its signature built from the job model."""

    async def tool(ctx: Context, **arguments: Any) -> Any:
        try:
            return await run(ctx, **arguments)
        except JobFailed as failure:
            # the worker's own "code: message", as the tool error's whole text
            return CallToolResult(
                content=[TextContent(type="text", text=str(failure))], is_error=True
            )

    async def run(ctx: Context, **arguments: Any) -> Any:
        image_path = arguments.pop("image_path", None)
        thumbnail = bool(arguments.pop("thumbnail", False))
        payload = {
            key: to_jsonable_python(value, by_alias=True)
            for key, value in arguments.items()
            if value is not None
        }
        if image_path is not None:
            payload["image"] = _read_image_path(image_path)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.report_progress(done, total, message)

        output = await backend.call({"action": spec.action, **payload}, progress)
        if spec.output is None and not thumbnail:
            return output
        content: list[Any] = [TextContent(type="text", text=json.dumps(output))]
        if thumbnail:
            data = await backend.annotated_image(output)
            image = _thumbnail(data) if data else None
            if image is not None:
                content.append(image)
        return CallToolResult(content=content, structured_content=output)

    parameters = tool_parameters(spec)
    if spec.action == "analyze":
        extra = [
            ("image_path", str | None, "a picture on the machine this server runs on"),
            ("thumbnail", bool, "add a small copy of the annotated picture as image content"),
        ]
        for name, kind, help_text in extra:
            default = None if name == "image_path" else False
            parameters.append(
                inspect.Parameter(
                    name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=default,
                    annotation=Annotated[kind, Field(description=help_text)],
                )
            )
    context = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    return_type = spec.output if spec.output is not None else dict[str, Any]
    tool.__signature__ = inspect.Signature([*parameters, context], return_annotation=return_type)  # type: ignore[attr-defined]
    tool.__name__ = spec.name
    return tool


def build_server(backend: Backend) -> MCPServer:
    server = MCPServer(
        "mug-positioning-worker",
        instructions=(
            "Tools of a mug positioning worker: it finds mugs on desk photos, measures where they "
            f"stand, judges placement rules and says how to move them. Jobs run on the {backend.description}."
        ),
    )
    for spec in TOOLS:
        server.add_tool(make_tool(spec, backend), name=spec.name, description=spec.description)
    return server
