"""What agents call that is not an LLM: retrieval, recommenders, catalog, image generation."""

__all__: list[str] = []
