"""Running an experiment in a work directory: `workdir` (lock, resume, best/, signals) and
`loop` (the one training loop every experiment goes through)."""
