"""Hosting a language model: the in-process transformers engine and the OpenAI-compatible server.
The protocol and the client every layer uses live in `assistant_core`."""
