"""studypack tests: unit/ (fast), e2e/ (Docker, ReproZip, real runs), support/ (shared code)."""
