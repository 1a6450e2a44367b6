"""Batches: the job state machine and provider status tables (`batch.states`); the batch engine comes next."""
