"""Agents: the knowledge base as a tool (MCP, OpenAI tools), the agent loop under a decision policy,
actions with human confirmation, and escalation to the review queue (docs/agents.md)."""
