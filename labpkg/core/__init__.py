"""The ground floor: checks, counting, devices, seeding, files, timing; no other layer."""
