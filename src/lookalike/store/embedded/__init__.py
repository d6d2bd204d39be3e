"""The default store: one SQLite file in the library directory (see store.py).

- `schema.py`: tables, migrations, rows <-> records, filters as SQL;
- `sqlite_errors.py`: SQLite errors as one-line user errors;
- `search.py`: exact top-k over the in-memory matrix;
- `store.py`: `EmbeddedStore`, transactions and the exact/ANN choice."""

from .schema import DB_NAME
from .store import EmbeddedStore

__all__ = ["DB_NAME", "EmbeddedStore"]
