"""What step types are built from: definitions, the runtime context, workspace file access, the
sandbox interface and the network guard.
"""
