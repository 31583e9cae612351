"""OpenAI-compatible chat completions: the HTTP client, SSE, the chat protocol, the executor,
model discovery and its cache."""
