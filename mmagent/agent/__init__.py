"""The agent: a LangGraph state machine around a ChatModel and a tool registry.

`Agent` / `RunResult` (api.py), the streaming `AgentEvent` (events.py), the interaction log
(log.py), the graph (graph.py, state.py) and `ScriptedChatModel`, a fake model for tests (fake.py).
"""

from mmagent.agent.api import Agent, CallResult, RunResult
from mmagent.agent.events import AgentEvent
from mmagent.agent.fake import ScriptedChatModel
from mmagent.agent.log import InteractionLog

__all__ = ["Agent", "AgentEvent", "CallResult", "InteractionLog", "RunResult", "ScriptedChatModel"]
