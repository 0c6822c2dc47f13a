"""ASGI entrypoint for uvicorn: `uvicorn api.main:app`."""
from api.app import create_app
from models.db import leave_checkpoints_to_others

leave_checkpoints_to_others()
app = create_app()
