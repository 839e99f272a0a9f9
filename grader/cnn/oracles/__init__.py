"""Independent references the grader (and the public tests) compare student work against."""
