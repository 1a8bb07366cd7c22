"""Stage 1, plan: from options, profiles and plan files to a `Plan` of trials on CPUs of this
machine (config, profiles/, plan, cpus, topology, designs)."""
