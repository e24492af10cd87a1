"""The shipped rules, one module each: a ``Params`` model and a pure ``evaluate`` function."""
