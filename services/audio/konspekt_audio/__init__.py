"""konspekt audio stage."""
