"""What a scrapyd node of the platform runs: its config, the job runner, live feed storage."""
