"""One suite per Protocol, run against every implementation of it (the conformance idea of
Haystack's document-store tests): a new backend passes these before anything else uses it."""
