"""Model families: one module each owns everything rankwise does with one kind of model
(:mod:`~rankwise.families.base` has the protocol and the registry)."""

from rankwise.families.base import Family, family_named, family_of, find_family, load_model, register_family
from rankwise.families.clicks import ClickFamily
from rankwise.families.cross import CrossFamily
from rankwise.families.dual import DualFamily
from rankwise.families.feature import FeatureFamily
from rankwise.families.llm import LLMFamily
from rankwise.families.multi_vector import MultiVectorFamily
from rankwise.families.preference import PreferenceFamily
from rankwise.families.sparse import InferenceFreeFamily, SparseFamily

__all__ = [
    "Family",
    "register_family",
    "family_of",
    "find_family",
    "family_named",
    "load_model",
    "DualFamily",
    "CrossFamily",
    "FeatureFamily",
    "PreferenceFamily",
    "ClickFamily",
    "SparseFamily",
    "InferenceFreeFamily",
    "MultiVectorFamily",
    "LLMFamily",
]
