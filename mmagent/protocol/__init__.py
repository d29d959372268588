"""The protocol every part speaks: chat messages and the `ChatModel` interface (chat.py), the one
tool-call text format and its parser (toolcall.py), and schema-guided decoding of calls
(constrained.py, llguidance).

May import: the standard library, pydantic, llguidance, `mmagent.errors`. Nothing above it:
no model, backend, tool store, agent or learning loop (types of the artifact store only under
TYPE_CHECKING).
"""
