"""Which organisation owns a dataset: the exchange catalog's ``owner_org``.

Used by the alert rules' ``exclude_own_org`` (a provider reading its own data raises no
first-access or off-hours alert). Looked up in the caller's transaction; a build without
the exchange tables, or a dataset not in the catalog, has no known owner (-> None), and
the alert rules then treat the access as someone else's data.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

__all__ = ["catalog_owner"]


def catalog_owner(session: Session, dataset: str) -> str | None:
    from exchange.tables import datasets

    cache: dict[str, str | None] = session.info.setdefault("quanguard_dataset_owner", {})
    if dataset in cache:
        return cache[dataset]
    present = session.info.get("quanguard_has_catalog")
    if present is None:
        present = sa.inspect(session.connection()).has_table(datasets.name)
        session.info["quanguard_has_catalog"] = present
    owner: str | None = None
    if present:
        owner = session.execute(sa.select(datasets.c.owner_org)
                                .where(datasets.c.name == dataset)).scalar()
    cache[dataset] = None if owner is None else str(owner)
    return cache[dataset]
