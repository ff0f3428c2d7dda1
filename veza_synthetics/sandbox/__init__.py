"""The sandbox: a reference Veza stack of our own, with a switch for every fault."""
from .stack import Sandbox

__all__ = ["Sandbox"]
