"""The pure domain: statuses, the transition tables, the machines and the rules.

Nothing here reads a clock, opens a file or touches a database.
"""
