"""The database: engines and pools (``engine``), units of work (``database``), what a
driver error means (``errors``) and constant reads run on the driver (``precompiled``)."""

from usermgmt.core.db.database import Database, upsert
from usermgmt.core.db.engine import mask_url

__all__ = ["Database", "mask_url", "upsert"]
