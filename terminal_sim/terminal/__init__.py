"""The station terminal: pump flow, host link, configuration and the `fuelcard terminal` CLI."""
