# One image for every part of the desk; docker-compose.yml picks the command (`payhara run <service>`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PAYHARA_MAIL_DIR=/data/mail

WORKDIR /app
# Only what the package needs: migrations and templates are installed as package data.
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
# the desk calendar file is read at run time, not installed: mount the association's own over it
COPY config ./config
ENV PAYHARA_CALENDAR_FILE=/app/config/desk-calendar.toml
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app payhara \
    && mkdir -p /data/mail && chown payhara /data/mail

# Run from outside the source tree, so the installed package is what runs.
WORKDIR /data
USER payhara
CMD ["payhara", "--help"]
