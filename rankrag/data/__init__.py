"""The shared evaluation/training data sets and their train / calib / dev splits."""
