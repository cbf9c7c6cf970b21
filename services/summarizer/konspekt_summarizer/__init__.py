"""konspekt summarizer stage."""
