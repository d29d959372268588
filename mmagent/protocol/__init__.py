"""The protocol every part speaks: chat messages and the `ChatModel` interface (chat.py), the one
tool-call text format, its parser and the one tool-result renderer (toolcall.py), schema-guided
decoding of calls (constrained.py, llguidance), what a call's values are grounded in (grounding.py:
digits shown beside spelled-out numbers, unstated optional arguments left out), and the default session-adapter hook slot the
entry layer fills (adapter_hook.py).

May import: the standard library, pydantic, llguidance, `mmagent.errors`. Nothing above it:
no model, backend, tool store, agent or learning loop (types of the artifact store only under
TYPE_CHECKING).
"""
