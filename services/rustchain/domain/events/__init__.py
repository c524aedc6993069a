"""Events: the envelope, its hash chain, its size bound, upcasting, and the Merkle log that anchors
it.
"""
