"""One router per noun, thin: parse the request, call a service, return its read model."""
