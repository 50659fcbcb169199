"""The language-model seam: one Protocol, an in-process transformers engine and an OpenAI-compatible
client."""

from assistant.llm.protocol import ChatMessages, ChatModel, Completion, ToolCall, Usage

__all__ = ["ChatMessages", "ChatModel", "Completion", "ToolCall", "Usage"]
