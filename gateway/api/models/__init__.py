"""Each dialect's request bodies, query parameters and answers, as pydantic models.

Answers accept keys beyond those listed (a model never drops what a handler adds); bodies accept
unknown keys where the real SDKs send them (see each dialect's models).
"""
