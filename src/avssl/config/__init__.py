"""Typed, validated configuration: schema, YAML loading, dotted overrides."""
