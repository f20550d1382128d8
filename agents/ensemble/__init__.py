"""LLM-ensemble labelers: one structured attribute-extraction call per (model, prompt variant)."""
