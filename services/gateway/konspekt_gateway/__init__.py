"""konspekt gateway stage."""
