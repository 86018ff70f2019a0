"""Online serving: replica plans and supervision, the scoring gateway and its upstreams."""
