# Placeholder for Pillow when it is not installed: the random dataset never opens an image.
