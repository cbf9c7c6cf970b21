"""konspekt shared package: generated stubs (konspekt.v1) and helpers every service uses."""
