"""lifecycle: a state-machine engine for SageMaker-style inference experiments."""
