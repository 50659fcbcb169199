"""Front ends: the terminal chat, the web chat and the webhooks, all over one dialog manager."""
