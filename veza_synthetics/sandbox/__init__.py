"""The sandbox: a reference Veza stack of our own, with a switch for every fault.

Installed with the `sandbox` extra. Nothing outside this package imports it at module level:
the suite watching a real environment never loads the sandbox's servers.
"""
