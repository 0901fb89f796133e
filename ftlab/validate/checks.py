"""The format checks of one example: the cookbook's error codes plus the fine-tuning API's rules and warnings."""

from __future__ import annotations

import json
from typing import Any

from ftlab.validate.rules import EXAMPLE_KEYS, MESSAGE_KEYS, ROLES, Finding

__all__ = ["messages_problem"]


def _strings(value: Any, depth: int = 0):
    """Every string inside a JSON value (bounded depth)."""
    if depth > 50:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, depth + 1)


def _has_lone_surrogate(value: Any) -> bool:
    for s in _strings(value):
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def _type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def messages_problem(obj: dict) -> str | None:
    """What is wrong with ``obj["messages"]``, or None when it is a non-empty list.

    Example: ``messages_problem({}) == "no 'messages' key"``; ``messages_problem({"messages": []})`` names the empty list.
    """
    messages = obj.get("messages")
    if isinstance(messages, list) and messages:
        return None
    if isinstance(messages, list):
        return "'messages' is an empty list"
    return "no 'messages' key" if "messages" not in obj else f"'messages' is {_type(messages)}"


class _Checker:
    """Checks one example (a parsed line), appending findings."""

    def __init__(self, line: int, errors: list[Finding], warnings: list[Finding]):
        self.line, self.errors, self.warnings = line, errors, warnings
        self.called: list[str] = []  # function names the assistant calls

    def error(self, code: str, message: str) -> None:
        self.errors.append(Finding(self.line, code, message))

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(Finding(self.line, code, message))

    def arguments(self, where: str, args: Any) -> None:
        if not isinstance(args, str):
            self.error("invalid_tool_call", f"{where}: 'arguments' must be a string holding a JSON object, not {_type(args)}")
            return
        try:
            decoded = json.loads(args)
        except (ValueError, RecursionError):
            self.warn("tool_arguments_not_object", f"{where}: 'arguments' is not valid JSON")
            return
        if isinstance(decoded, str):
            try:
                inner = json.loads(decoded)
            except (ValueError, RecursionError):
                inner = None
            if isinstance(inner, dict):
                self.warn("double_encoded_tool_arguments",
                          f"{where}: 'arguments' is JSON-encoded twice (a string holding a JSON string); "
                          "encode the arguments object once")
                return
        if not isinstance(decoded, dict):
            self.warn("tool_arguments_not_object", f"{where}: 'arguments' decodes to {_type(decoded)}, not a JSON object")

    def tool_calls(self, where: str, calls: Any) -> list[str]:
        names: list[str] = []
        if not isinstance(calls, list) or not calls:
            self.error("invalid_tool_call", f"{where}: 'tool_calls' must be a non-empty list")
            return names
        for j, call in enumerate(calls, 1):
            w = f"{where}, tool call {j}"
            if not isinstance(call, dict):
                self.error("invalid_tool_call", f"{w} is {_type(call)}, not an object")
                continue
            if call.get("type", "function") != "function":
                self.error("invalid_tool_call", f"{w}: 'type' must be 'function'")
            if "id" in call and not isinstance(call["id"], str):
                self.error("invalid_tool_call", f"{w}: 'id' must be a string")
            fn = call.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
                self.error("invalid_tool_call", f"{w}: needs 'function' with a 'name' and 'arguments'")
                continue
            names.append(fn["name"])
            if "arguments" not in fn:
                self.error("invalid_tool_call", f"{w}: 'function' has no 'arguments'")
            else:
                self.arguments(w, fn["arguments"])
        return names

    def tools(self, tools: Any, key: str) -> set[str] | None:
        if not isinstance(tools, list):
            self.error("invalid_tools", f"'{key}' must be a list of function definitions, not {_type(tools)}")
            return None
        names: set[str] = set()
        for j, tool in enumerate(tools, 1):
            fn = tool.get("function") if key == "tools" and isinstance(tool, dict) else tool
            if key == "tools" and isinstance(tool, dict) and tool.get("type", "function") != "function":
                self.error("invalid_tools", f"{key}[{j}]: 'type' must be 'function'")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
                self.error("invalid_tools", f"{key}[{j}] needs a function with a 'name'")
                continue
            if "parameters" in fn and not isinstance(fn["parameters"], dict):
                self.error("invalid_tools", f"{key}[{j}] ({fn['name']}): 'parameters' must be a JSON-schema object")
            names.add(fn["name"])
        return names

    def content(self, where: str, content: Any) -> bool:
        """True when the content is usable text (a string, or a list of text/image parts)."""
        if isinstance(content, str):
            if content:
                return True
            self.error("missing_content", f"{where} has empty 'content'")
            return False
        if isinstance(content, list) and content:
            for j, part in enumerate(content, 1):
                ok = isinstance(part, dict) and (
                    (part.get("type") == "text" and isinstance(part.get("text"), str))
                    or (part.get("type") == "image_url" and isinstance(part.get("image_url"), dict)
                        and isinstance(part["image_url"].get("url"), str)))
                if not ok:
                    self.error("missing_content", f"{where}, content part {j} is not a text or image_url part")
                    return False
            return True
        self.error("missing_content", f"{where}: 'content' must be a non-empty string, not {_type(content)}")
        return False

    def message(self, i: int, msg: Any) -> str | None:
        """Check one message; return its role when it is recognized."""
        where = f"message {i}"
        if not isinstance(msg, dict):
            self.error("data_type", f"{where} is {_type(msg)}, not an object")
            return None
        role = msg.get("role")
        if "role" not in msg:
            self.error("message_missing_key", f"{where} has no 'role'")
        elif not isinstance(role, str) or role not in ROLES:
            self.error("unrecognized_role", f"{where} has role {role!r}: use one of {', '.join(ROLES)}")
            role = None
        else:
            where = f"message {i} ({role})"
        unknown = [k for k in msg if k not in MESSAGE_KEYS]
        if unknown:
            self.error("message_unrecognized_key",
                       f"{where} has unrecognized key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(MESSAGE_KEYS)}")
        calls_tools = msg.get("tool_calls") is not None or msg.get("function_call") is not None
        if "content" not in msg:
            if not (role == "assistant" and calls_tools):
                self.error("message_missing_key", f"{where} has no 'content'")
        elif msg["content"] is None and role == "assistant" and calls_tools:
            pass
        else:
            self.content(where, msg["content"])
        if "name" in msg and not isinstance(msg["name"], str):
            self.error("message_unrecognized_key", f"{where}: 'name' must be a string")
        if "weight" in msg:
            w = msg["weight"]
            if isinstance(w, bool) or w not in (0, 1):
                self.error("invalid_weight", f"{where}: 'weight' is {w!r}; it must be 0 or 1")
            elif role != "assistant":
                self.error("invalid_weight", f"{where}: 'weight' is only allowed on assistant messages")
        if "tool_calls" in msg and msg["tool_calls"] is not None:
            if role != "assistant":
                self.error("invalid_tool_call", f"{where}: only assistant messages may carry 'tool_calls'")
            self.called += self.tool_calls(where, msg["tool_calls"])
        if "function_call" in msg and msg["function_call"] is not None:
            fc = msg["function_call"]
            if role != "assistant":
                self.error("invalid_tool_call", f"{where}: only assistant messages may carry 'function_call'")
            if not isinstance(fc, dict) or not isinstance(fc.get("name"), str):
                self.error("invalid_tool_call", f"{where}: 'function_call' needs a 'name' and 'arguments'")
            else:
                self.called.append(fc["name"])
                self.arguments(f"{where}, function_call", fc.get("arguments"))
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            self.error("message_missing_key", f"{where}: a tool message needs a string 'tool_call_id'")
        return role

    def extra_keys(self, obj: dict, keys: tuple[str, ...], holder: str) -> None:
        """Warn about keys of ``obj`` outside ``keys`` (OpenAI ignores them); ``holder`` names ``obj``."""
        unknown = [k for k in obj if k not in keys]
        if unknown:
            self.warn("unrecognized_example_key",
                      f"unrecognized key(s) {', '.join(map(repr, unknown))} in {holder}; OpenAI reads only "
                      f"{', '.join(keys)} there. Strip extra fields before uploading")

    def conversation(self, obj: dict, keys: tuple[str, ...], holder: str
                     ) -> tuple[list, list[str | None], set[str] | None] | None:
        """The checks every object holding a conversation shares (a chat line, a preference pair's ``input``):
        its non-empty ``messages`` list, keys outside ``keys``, its ``tools``/``functions`` and
        ``parallel_tool_calls``, and each message. Returns ``(messages, roles, defined tool names or None)``, or
        ``None`` when there is no messages list to check. ``holder`` names the object in messages ("a chat line")."""
        messages = obj.get("messages")
        what = messages_problem(obj)
        if what:
            self.error("missing_messages_list", f"{what}: {holder} needs a non-empty 'messages' list")
            return None
        self.extra_keys(obj, keys, holder)
        defined: set[str] | None = None
        for key in ("tools", "functions"):
            if key in obj:
                names = self.tools(obj[key], key)
                if names is not None:
                    defined = (defined or set()) | names
        if "parallel_tool_calls" in obj and not isinstance(obj["parallel_tool_calls"], bool):
            self.error("invalid_tools", "'parallel_tool_calls' must be true or false")
        return messages, [self.message(i, m) for i, m in enumerate(messages, 1)], defined

    def example(self, ex: Any) -> list[dict] | None:
        """Check a parsed line. Returns its messages (dicts only) when they can be counted."""
        if not isinstance(ex, dict):
            self.error("data_type", f"the line is {_type(ex)}, not a JSON object with a 'messages' list")
            return None
        found = self.conversation(ex, EXAMPLE_KEYS, "a chat line")
        if found is None:
            return None
        messages, roles, defined = found
        if "assistant" not in roles:
            self.error("example_missing_assistant_message", "no assistant message: nothing to train on")
        else:
            weights = [m.get("weight", 1) for m in messages if isinstance(m, dict) and m.get("role") == "assistant"]
            if all(w == 0 for w in weights):
                self.warn("no_trained_messages", "every assistant message has weight 0: this example trains nothing")
        if "system" not in roles and "developer" not in roles:
            self.warn("missing_system_message", "no system message")
        if "user" not in roles:
            self.warn("missing_user_message", "no user message")
        if defined is not None:
            for name in self.called:
                if name not in defined:
                    self.warn("unknown_tool", f"the assistant calls {name!r}, which the example's tools do not define")
        return [m for m in messages if isinstance(m, dict)]


