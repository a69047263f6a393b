"""The live service: transcription while people speak, over a WebSocket, on the batch jobs' engine."""
