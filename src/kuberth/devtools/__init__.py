"""Development tools (the GitHub stand-in); never used by `kuberth serve`."""
