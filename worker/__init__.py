"""The queue workers, one package each (transcription, notification, webhooks), over the shared
runtime (`worker.runtime`: the receive loop and its outcomes DONE / RETRY / DEAD_LETTER)."""
