"""Chat backends behind the one `ChatModel` interface (mmagent.chat)."""
