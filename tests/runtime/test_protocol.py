"""The runner protocol: committed schema, JSON-lines round trips, exit mapping."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from framecast.node.runtime.base import terminal_from_exit
from framecast.shared.runner_protocol import (
    SCHEMA_PATH,
    CancelMessage,
    RunnerEvent,
    RunRequest,
    ShutdownMessage,
    decode_event,
    decode_inbound,
    encode_line,
    failed_event,
    schema_text,
)
from framecast.shared.spec import parse_spec

SPEC = parse_spec(
    {
        "model": "tiny-cogvideox",
        "prompt": "a red cat",
        "num_frames": 9,
        "fps": 8,
        "width": 32,
        "height": 32,
        "steps": 2,
        "guidance_milli": 6000,
    }
)


def test_committed_schema_matches_models() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "shared/schemas/runner_protocol.schema.json is stale; regenerate with "
        "`.venv/bin/python -m framecast.shared.runner_protocol --write`"
    )


def test_inbound_messages_round_trip_as_single_lines() -> None:
    request = RunRequest(job_id="7", spec=SPEC, model_dir="/w", output_dir="/o")
    for message in (request, CancelMessage(job_id="7"), ShutdownMessage()):
        line = encode_line(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert decode_inbound(line) == message


def test_event_round_trip_and_terminal_flag() -> None:
    event = failed_event("7", "oom", "out of memory\nsecond line", fix="lower frames")
    assert decode_event(encode_line(event)) == event
    assert event.terminal and event.status == "failed"
    assert failed_event("7", "canceled", "stop").status == "canceled"
    assert not RunnerEvent(job_id="7", status="processing", progress=0.5).terminal


def test_protocol_rejects_unknown_fields_and_versions() -> None:
    good = json.loads(encode_line(RunnerEvent(job_id="7", status="starting")))
    with pytest.raises(ValidationError):
        decode_event(json.dumps({**good, "protocol": 2}))
    with pytest.raises(ValidationError):
        decode_event(json.dumps({**good, "surprise": 1}))
    with pytest.raises(ValidationError):
        decode_event(json.dumps({**good, "progress": 1.5}))


@pytest.mark.parametrize(
    ("code", "oom", "kind"),
    [
        (137, False, "oom"),
        (-9, False, "oom"),
        (1, True, "oom"),
        (1, False, "crash"),
        (None, False, "crash"),
    ],
)
def test_exit_codes_map_to_error_kinds(code: int | None, oom: bool, kind: str) -> None:
    event = terminal_from_exit("7", code, oom_killed=oom, stderr_tail="boom")
    assert event.status == "failed" and event.error is not None
    assert event.error.kind == kind and event.error.fix
