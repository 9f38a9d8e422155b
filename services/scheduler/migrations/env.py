from services.scheduler.orm import metadata
from shared.migrate import run_env

run_env(metadata)
