"""mmagent speaking other systems' protocols, on the same Agent, ChatModel and tool registry.

    media.py        media that arrives over a wire (data URIs, base64, opt-in URLs) -> checked bytes
    mcp_server.py   `mmagent mcp`: the registry's tools as an MCP server (stdio or streamable HTTP)
    mcp_client.py   `Agent(mcp_servers=[...])` / `--mcp`: an MCP server's tools imported as Tools

The HTTP server (OpenAI protocol, agent endpoints, the web page) is `mmagent.serve`.
"""
