"""konspekt renderer stage."""
