"""Encoder families: encoders whose vectors a head trained on one member can read.

``e5-small-int8`` is ``e5-small`` quantised: the same model, vectors with a cosine of
about 0.999 to the float32 ones. A head trained on one member loads beside another member
of its family; every pairing carries its measured quality cost
(``benchmarks/int8_quality.py``), logged when such a head is loaded. Across families a head
is refused with a message that says what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from embedsuite.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["FAMILIES", "Family", "family_of", "pairing_cost"]


@dataclass(frozen=True)
class Family:
    """Encoders sharing one model: ``members`` (registry names), ``costs`` per pairing.

    ``costs[(trained_on, read_with)]`` is the measured quality cost of a head trained on
    ``trained_on`` reading the vectors of ``read_with``, in words with its source.
    """

    members: tuple[str, ...]
    costs: Mapping[tuple[str, str], str] = field(default_factory=dict)


#: family name -> :class:`Family`
FAMILIES: Registry[Family] = Registry("encoder family")

#: ``python benchmarks/int8_quality.py --only-shipped`` (2-core machine, 2026-12-02, 143 s)
_INT8 = ("measured with benchmarks/int8_quality.py --only-shipped: the shipped sentiment head, "
         "SST-2 test accuracy -0.77 points (0.9001 -> 0.8924; the earlier 6,144-phrase head: "
         "+0.38); the shipped QA head, XQuAD-en F1 "
         "-0.15 points (0.5666 -> 0.5651; an earlier int8 build measured -0.24); vector cosine "
         "int8 vs fp32 mean 0.9987, min 0.9878")
FAMILIES.register("e5-small", Family(
    members=("e5-small", "e5-small-int8"),
    costs={("e5-small", "e5-small-int8"): _INT8,
           ("e5-small-int8", "e5-small"): "not measured (no head is shipped for int8); the "
                                          "vectors differ as little as the other way round"},
))


def family_of(name: str | None) -> str | None:
    """The family an encoder registry name belongs to, or ``None``."""
    if not name:
        return None
    for fam, spec in FAMILIES.items():
        if name in spec.members:
            return fam
    return None


def pairing_cost(trained_on: str, read_with: str) -> str | None:
    """The measured cost of a head trained on ``trained_on`` reading ``read_with``'s vectors,
    or ``None`` when the two are not members of one family."""
    fam = family_of(trained_on)
    if fam is None or fam != family_of(read_with):
        return None
    return FAMILIES.get(fam).costs.get((trained_on, read_with), "not measured")
