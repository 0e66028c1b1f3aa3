"""What the chapters use to talk to the page: display, exercise checks, the version check."""
