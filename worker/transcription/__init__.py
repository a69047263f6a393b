"""The transcription worker: S3 upload events and chunk messages in, transcripts out (see __main__ and docs/architecture.md)."""
