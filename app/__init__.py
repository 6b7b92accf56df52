"""Slipway: a self-hosted deployment engine with a GraphQL API."""
