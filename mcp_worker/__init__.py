"""An MCP server over the worker's actions (SPEC 12): ``python -m mcp_worker --local`` or
``--endpoint ID``, over stdio or Streamable HTTP."""
