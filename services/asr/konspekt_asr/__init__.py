"""konspekt asr stage."""
