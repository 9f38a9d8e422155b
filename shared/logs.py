"""Logging set-up. Log lines carry ids and receipt numbers, never personal data."""
import logging
import os


def configure(service: str) -> None:
    logging.basicConfig(
        level=os.environ.get("PAYHARA_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
