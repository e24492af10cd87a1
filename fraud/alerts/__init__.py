"""The alert queue: alerts raised by the rules and the worker, assigned, commented and resolved."""
