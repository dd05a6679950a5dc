"""Results: the result record and its schema, the environment fingerprint stored with it, the
statistics of a measurement, and the comparison of results from any machines."""
