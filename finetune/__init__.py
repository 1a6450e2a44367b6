"""Fine-tuning: the job state machine and provider status tables (`finetune.states`); the jobs come next."""
