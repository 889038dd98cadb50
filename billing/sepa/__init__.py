"""SEPA: reason codes, the pain.008 writer and the hand-over of batches to the bank."""
