"""Training and evaluation data: degradations, the synthetic text corpus, dataset loaders."""
