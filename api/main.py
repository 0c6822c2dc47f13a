"""ASGI entrypoint for uvicorn: `uvicorn api.main:app`."""
import sqlalchemy as sa

from api.app import create_app
from connectors.settings import get_settings
from models.db import leave_checkpoints_to_others, require_current_schema

leave_checkpoints_to_others()
try:
    require_current_schema(get_settings().db_url)
except sa.exc.OperationalError:
    pass  # not reachable now: requests answer 503 until it is
app = create_app()
