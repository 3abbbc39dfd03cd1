"""House reasoning tasks of the text domain: generators, layouts and exact checkers."""
