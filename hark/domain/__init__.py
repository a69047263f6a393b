"""The shared domain: what the API, the workers and the operators' tools all mean by a job, a key, a transcript."""
