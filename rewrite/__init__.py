"""unspin: restore spun text to its standard wording, with every change shown as an edit.

    >>> from rewrite import Restorer
    >>> restorer = Restorer.from_pretrained()      # or Restorer.from_pretrained("path/to/model")
    >>> result = restorer.restore("Rubio mentioned not less than 15 individuals.")
    >>> result.text
    'Rubio said at least 15 people.'
    >>> result.edits[0]
    Edit(offset=6, length=9, original='mentioned', replacement='said', confidence=0.98)

Offsets and lengths count Unicode code points of the input. ``apply_edits(text, result.edits)``
rebuilds ``result.text``; ``result.to_dict()`` is JSON-ready.
"""

from .errors import InputError, ModelError, UnspinError
from .guard import GuardConfig
from .edits import Edit, apply_edits
from .restorer import Restoration, Restorer, RestorerConfig

__all__ = [
    "Edit",
    "GuardConfig",
    "InputError",
    "ModelError",
    "Restoration",
    "Restorer",
    "RestorerConfig",
    "UnspinError",
    "apply_edits",
]
