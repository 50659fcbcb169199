"""The base layer: errors, settings, the database, the SQLite gate and the chat-model protocol and
client. It imports nothing from dialog/, knowledge/, ui/ or the rest of assistant/."""
