"""LLM access: every request to a model goes through here.

In: ChatRequest records. Out: ChatResult records. The OpenAI-compatible client (retries, rate limits,
redaction) and the local transformers client share one content-keyed cache; jobs runs a batch of
requests resumably for the judge and refine stages; templates load judge prompt files; formats are the
prompt formats (vicuna, alpaca, chat-template) that training and generation render conversations in.
"""
