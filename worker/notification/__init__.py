"""The notification worker: notify messages in, SES emails with expiring transcript links out."""
