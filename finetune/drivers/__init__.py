"""One fine-tuning driver per provider adapter (`finetune.drivers.registry.DRIVERS`), behind `TuneDriver`."""
