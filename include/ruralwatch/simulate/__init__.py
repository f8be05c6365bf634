"""The department simulator: a synthetic city whose departments deliver every feed of the exchange spec.

It is a client of the contract, like a department: it imports nothing else from ruralwatch, and
production code never imports it. See README.md in this folder.
"""
from __future__ import annotations

from .api import start_server
from .generate import Options, generate
from .geography import write_area_reference
from .leadfeedback import write_lead_feedback

__all__ = ["Options", "generate", "start_server", "write_area_reference", "write_lead_feedback"]
