"""The webhook worker: webhook messages in, signed POSTs to checked URLs out, each attempt recorded on the job."""
