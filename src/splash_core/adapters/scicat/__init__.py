"""SciCat: the dataset catalog (:class:`SciCatCatalog`, a ``CatalogPort``) over the SciCat v3 REST API.

Importing this package reads nothing and contacts nothing; the first catalog call logs in.
"""

from splash_core.adapters.scicat._errors import SciCatLoginFailed
from splash_core.adapters.scicat.catalog import SciCatCatalog
from splash_core.adapters.scicat.factory import build_scicat_catalog
from splash_core.adapters.scicat.settings import SCICAT_KEYS, SciCatSettings, scicat_settings

__all__ = [
    "SCICAT_KEYS",
    "SciCatCatalog",
    "SciCatLoginFailed",
    "SciCatSettings",
    "build_scicat_catalog",
    "scicat_settings",
]
