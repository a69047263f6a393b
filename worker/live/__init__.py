"""The live service: answers while the caller waits (the OpenAI-compatible endpoint; the live WebSocket), on
the shared transcription engine's priority lane (docs/architecture.md, "The live service")."""
