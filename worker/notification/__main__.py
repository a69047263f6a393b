"""`python -m worker.notification`: run the notification worker until SIGTERM."""

from __future__ import annotations

import sys

from worker.notification.worker import NotificationWorker


def main() -> int:
    worker = NotificationWorker()
    worker.install_signal_handlers()
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
